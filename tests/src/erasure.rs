//! The erasure scenario every backend runs: a user's personal data published, stored,
//! snapshotted, relayed through the outbox and dead-lettered only sealed, then erased for good
//! by the GDPR deletion saga, while another user's still reads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use event_bus_core::dead_letter::{DeadLetterFilter, DeadLetterHandler, ParkedStore};
use event_bus_core::{
    Broker, BusSettings, DomainEvent, EventBus, EventEnvelope, HandlerError, Recorder,
    SubscriptionConfig, handler_fn,
};
use event_bus_sagas::shipped::ExampleServices;
use event_bus_sagas::shipped::gdpr_deletion::{self, UserDataDeletionRequested};
use event_bus_sagas::{MemorySagaRepository, SagaOrchestrator, SagaSettings, SagaStatus};
use event_store::outbox::{Outbox, OutboxRelay};
use event_store::replay::Replayer;
use event_store::store::{EventFilter, EventStore, EventStoreExt, ExpectedVersion, StreamId};
use event_store_postgres::PgEventStore;
use personal_data::{
    CachedKeyStore, ERASED, KeyState, KeyStore, MasterKey, MasterKeys, OpenLayer, Opened,
    PersonalData, PgKeyStore, SealedStore, Sealer, SealingBroker, envelope_of,
};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tower_layer::Layer;

/// How long the scenario waits for deliveries.
const WAIT: Duration = Duration::from_secs(60);
/// A master key for the test's key table (base64 of 32 bytes).
const MASTER: &str = "q2XkS5p8m0ZfW3N1Yc7bT4uV9rA6dE2hJ8kL0nP3sQo=";

/// The erased user, and the one whose data must stay readable.
const ALICE: User = User {
    id: "u-alice",
    email: "alice.liddell@example.com",
    name: "Alice Pleasance Liddell",
};
const BOB: User = User {
    id: "u-bob",
    email: "bob.marley@example.com",
    name: "Robert Nesta Marley",
};

struct User {
    id: &'static str,
    email: &'static str,
    name: &'static str,
}

/// A registration carrying an e-mail and a name, both personal data of the user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileUpdated {
    /// The user, the data subject.
    pub user_id: String,
    /// Personal.
    pub email: String,
    /// Personal.
    pub name: String,
    /// Not personal.
    pub revision: u32,
}

impl DomainEvent for ProfileUpdated {
    const EVENT_TYPE: &'static str = "profile.updated";
    const AGGREGATE_TYPE: &'static str = "user";

    fn aggregate_id(&self) -> String {
        self.user_id.clone()
    }
}

impl PersonalData for ProfileUpdated {
    const PERSONAL_FIELDS: &'static [&'static str] = &["email", "name"];

    fn data_subject(&self) -> String {
        self.user_id.clone()
    }
}

fn update(user: &User, revision: u32) -> EventEnvelope {
    envelope_of(&ProfileUpdated {
        user_id: user.id.to_owned(),
        email: user.email.to_owned(),
        name: user.name.to_owned(),
        revision,
    })
    .expect("encode")
    .source("profiles")
    .build()
}

/// Needles that must never appear in plain text: as they are, and hex-encoded (how
/// PostgreSQL prints `bytea`).
fn needles() -> Vec<String> {
    [ALICE.email, ALICE.name, BOB.email, BOB.name]
        .iter()
        .flat_map(|text| {
            let hex: String = text.bytes().map(|b| format!("{b:02x}")).collect();
            [(*text).to_owned(), hex]
        })
        .collect()
}

fn assert_no_plain_text(place: &str, bytes: &[u8]) {
    for needle in needles() {
        assert!(
            !bytes
                .windows(needle.len())
                .any(|window| window == needle.as_bytes()),
            "`{needle}` in plain text in {place}"
        );
    }
}

/// Every row of every table of the schema, as PostgreSQL prints it.
async fn assert_tables_sealed(store: &PgEventStore, when: &str) {
    for table in [
        "events",
        "snapshots",
        "outbox",
        "parked_dead_letters",
        "personal_data_keys",
    ] {
        let rows: String = sqlx::query_scalar(&format!(
            "SELECT coalesce(string_agg(t::text, ' '), '') FROM {} t",
            store.schema().table(table)
        ))
        .fetch_one(store.pool())
        .await
        .expect("read a table");
        assert_no_plain_text(&format!("table {table} {when}"), rows.as_bytes());
    }
}

/// Every message the broker keeps on `topic`, read with a fresh consumer group of the raw
/// backend (no sealing layer), from the first.
async fn raw_messages(
    broker: &dyn Broker,
    topic: &str,
    count: usize,
) -> Vec<event_bus_core::Message> {
    let group = format!("raw-{}", uuid::Uuid::now_v7().simple());
    let mut subscription = broker
        .subscribe(&SubscriptionConfig::new(topic, group))
        .await
        .expect("subscribe raw");
    let mut messages = Vec::new();
    let deadline = Instant::now() + WAIT;
    while messages.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        let delivery = tokio::time::timeout(left, subscription.next())
            .await
            .unwrap_or_else(|_| panic!("{count} raw messages on {topic}, got {}", messages.len()))
            .expect("subscription open")
            .expect("a delivery");
        messages.push(delivery.message().clone());
        delivery.ack().await.expect("ack");
    }
    subscription.close().await.expect("close");
    messages
}

fn message_bytes(message: &event_bus_core::Message) -> Vec<u8> {
    let mut bytes = message.payload.to_vec();
    for (name, value) in &message.headers {
        bytes.extend_from_slice(name.as_bytes());
        bytes.extend_from_slice(value.as_bytes());
    }
    bytes
}

async fn wait_until<F: AsyncFn() -> bool>(what: &str, condition: F) {
    let deadline = Instant::now() + WAIT;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn names(mut names: Vec<String>, event: &EventEnvelope) -> Vec<String> {
    names.push(event.decode::<ProfileUpdated>().expect("decodes").name);
    names
}

/// Runs the scenario on the bus built from `settings` over `inner` (the raw backend), with the
/// PostgreSQL store at `database_url` in a fresh schema; `backend_bytes` returns every byte
/// the backend itself keeps for the test (such as Redis streams), or nothing.
pub async fn erasure_reaches_every_copy<R: AsyncFn() -> Vec<Vec<u8>>>(
    settings: BusSettings,
    inner: Arc<dyn Broker>,
    database_url: &str,
    backend_bytes: R,
) {
    let schema = format!("evbus_t_{}", uuid::Uuid::now_v7().simple());
    let store = PgEventStore::connect(database_url, &schema)
        .await
        .expect("connect PostgreSQL")
        .with_snapshot_interval(2);
    let masters = MasterKeys::new(MasterKey::from_base64(MASTER, "test").expect("master key"));
    let pg_keys = PgKeyStore::connect(store.pool().clone(), store.schema(), masters.clone())
        .await
        .expect("key store");
    let keys: Arc<dyn KeyStore> = Arc::new(CachedKeyStore::new(pg_keys));
    let sealer = Sealer::new(keys.clone());
    let sealed_store = Arc::new(SealedStore::new(store.clone(), sealer.clone()));
    let bus = Arc::new(EventBus::new(
        Arc::new(SealingBroker::new(inner.clone(), sealer.clone())),
        settings,
    ));

    // A profile projection, and a mailer that refuses Alice's events for good, so they are
    // dead-lettered and parked in PostgreSQL.
    let profiles = Recorder::new();
    bus.subscribe(
        bus.subscription(ProfileUpdated::EVENT_TYPE, "profiles"),
        OpenLayer::new(sealer.clone()).layer(profiles.clone()),
    )
    .await
    .expect("subscribe");
    let mailer = handler_fn(|event: EventEnvelope| async move {
        if event.aggregate_id == ALICE.id {
            Err(HandlerError::permanent("no mail for this address"))
        } else {
            Ok(())
        }
    });
    bus.subscribe(
        bus.subscription(ProfileUpdated::EVENT_TYPE, "mailer"),
        OpenLayer::new(sealer.clone()).layer(mailer),
    )
    .await
    .expect("subscribe");
    let parked: Arc<dyn ParkedStore> = Arc::new(store.parked_store());
    let dead_letters = DeadLetterHandler::new(bus.broker().clone(), parked.clone());
    let dead_letter_topic = bus.topics().dead_letter_topic().to_owned();
    let stop = CancellationToken::new();
    let parker = tokio::spawn({
        let stop = stop.clone();
        let config = SubscriptionConfig::new(dead_letter_topic.clone(), "parker");
        async move { dead_letters.run(&config, stop).await }
    });

    for user in [&ALICE, &BOB] {
        let stream = StreamId::new("user", user.id);
        // The first revision published and appended; the second appended with the outbox,
        // which the relay below publishes.
        let event = update(user, 1);
        bus.publish(&event).await.expect("publish");
        sealed_store
            .append(&stream, ExpectedVersion::Any, vec![event])
            .await
            .expect("append");
        sealed_store
            .append_and_enqueue(&stream, ExpectedVersion::Any, vec![update(user, 2)])
            .await
            .expect("append and enqueue");
        let rebuilt = sealed_store
            .reconstruct_state(&stream, names, Vec::new())
            .await
            .expect("rebuild");
        assert_eq!(rebuilt.state, [user.name, user.name]);
        assert!(rebuilt.snapshot_saved);
    }
    let relayed = OutboxRelay::for_bus(sealed_store.clone(), &bus)
        .relay_once()
        .await
        .expect("relay");
    assert_eq!(relayed.published, 2);
    let delivered = profiles.wait_for(4, WAIT).await.expect("handled");
    assert!(
        delivered
            .iter()
            .all(|e| [ALICE.email, BOB.email].contains(&e.payload["email"].as_str().unwrap())),
        "handlers see the fields decrypted"
    );
    wait_until("Alice's two dead letters parked", async || {
        parked
            .list(&DeadLetterFilter::default(), 10)
            .await
            .expect("list")
            .len()
            >= 2
    })
    .await;

    let topic = bus.topics().topic(ProfileUpdated::EVENT_TYPE);
    let check_raw = async |when: &str| {
        assert_tables_sealed(&store, when).await;
        for message in raw_messages(inner.as_ref(), &topic, 4).await {
            assert_no_plain_text(&format!("topic {topic} {when}"), &message_bytes(&message));
        }
        for message in raw_messages(inner.as_ref(), &dead_letter_topic, 2).await {
            assert_no_plain_text(
                &format!("the dead letters {when}"),
                &message_bytes(&message),
            );
        }
        for (index, bytes) in backend_bytes().await.iter().enumerate() {
            assert_no_plain_text(&format!("backend record {index} {when}"), bytes);
        }
    };
    check_raw("before the erasure").await;

    // The GDPR deletion saga, on the same bus.
    let services = Arc::new(ExampleServices::new());
    services.hold(&format!("profiles-data:{}", ALICE.id));
    let orchestrator = SagaOrchestrator::new(
        bus.clone(),
        Arc::new(MemorySagaRepository::new()),
        SagaSettings::default(),
    );
    orchestrator
        .register(gdpr_deletion::definition(
            services,
            &["profiles"],
            keys.clone(),
            WAIT,
        ))
        .expect("register");
    orchestrator.subscribe().await.expect("saga subscribe");
    let key = format!("erase-{}", ALICE.id);
    let trigger = EventEnvelope::from_event(&UserDataDeletionRequested {
        request_id: key.clone(),
        user_id: ALICE.id.to_owned(),
    })
    .expect("encode")
    .idempotency_key(key.clone())
    .build();
    bus.publish(&trigger).await.expect("publish the request");
    let state = orchestrator
        .wait_until(
            event_bus_sagas::saga_id(gdpr_deletion::SAGA, &key),
            WAIT,
            |s| s.status.is_terminal(),
        )
        .await
        .expect("saga ends");
    assert_eq!(state.status, SagaStatus::Completed, "{:?}", state.failure);

    check_raw("after the erasure").await;

    // Nothing of Alice's decrypts any more, from any copy; Bob's does.
    let fresh = PgKeyStore::connect(store.pool().clone(), store.schema(), masters)
        .await
        .expect("key store");
    assert!(matches!(
        fresh.key(ALICE.id).await.unwrap(),
        KeyState::Forgotten
    ));
    assert!(matches!(
        fresh.key(BOB.id).await.unwrap(),
        KeyState::Live(_)
    ));
    let uncached = Sealer::new(Arc::new(fresh));
    for message in raw_messages(inner.as_ref(), &topic, 4).await {
        let mut event = EventEnvelope::from_message(&message).expect("an envelope");
        let opened = uncached.open(&mut event).await.expect("opens");
        let expected = if event.aggregate_id == ALICE.id {
            (Opened::Erased, ERASED, ERASED)
        } else {
            (Opened::Decrypted, BOB.email, BOB.name)
        };
        assert_eq!(
            (
                opened,
                event.payload["email"].as_str().unwrap(),
                event.payload["name"].as_str().unwrap()
            ),
            expected
        );
    }
    for letter in parked.list(&DeadLetterFilter::default(), 10).await.unwrap() {
        let mut event = EventEnvelope::from_message(&letter.message).expect("an envelope");
        assert_eq!(uncached.open(&mut event).await.unwrap(), Opened::Erased);
    }

    // A projection rebuilt from the store after the erasure completes, with the marker.
    let projection = Recorder::new();
    let progress = Replayer::new(sealed_store.clone())
        .replay_into(
            &EventFilter::all().event_type(ProfileUpdated::EVENT_TYPE),
            0,
            &projection,
            |_| {},
        )
        .await
        .expect("the rebuild completes");
    assert_eq!(progress.replayed, 4);
    for event in projection.events() {
        let profile = event.decode::<ProfileUpdated>().expect("decodes");
        let expected = if profile.user_id == ALICE.id {
            (ERASED, ERASED)
        } else {
            (BOB.email, BOB.name)
        };
        assert_eq!((profile.email.as_str(), profile.name.as_str()), expected);
    }
    let alice = sealed_store
        .reconstruct_state(&StreamId::new("user", ALICE.id), names, Vec::new())
        .await
        .expect("rebuild");
    assert_eq!(
        (alice.state, alice.snapshot_version),
        (vec![ERASED.to_owned(); 2], None)
    );
    let bob = sealed_store
        .reconstruct_state(&StreamId::new("user", BOB.id), names, Vec::new())
        .await
        .expect("rebuild");
    assert_eq!(
        (bob.state, bob.snapshot_version),
        (vec![BOB.name.to_owned(); 2], Some(2))
    );

    stop.cancel();
    parker.await.expect("parker").expect("parker ran");
    orchestrator.shutdown().await;
    bus.shutdown().await.expect("shutdown");
    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(store.pool())
        .await;
}
