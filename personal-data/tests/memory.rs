//! Crypto-shredding on the in-memory bus and event store: personal fields sealed on publish and
//! append, opened for handlers and reads, and erased for good once the subject is forgotten.

use std::sync::Arc;
use std::time::Duration;

use event_bus_core::{BusSettings, DomainEvent, EventBus, EventEnvelope, InMemoryBroker, Recorder};
use event_store::MemoryEventStore;
use event_store::store::{EventStore, EventStoreExt, ExpectedVersion, StreamId};
use personal_data::{
    ERASED, ERASED_HEADER, MemoryKeyStore, OpenLayer, PersonalData, SEALED_HEADER, SealedStore,
    Sealer, SealingBroker, envelope_of,
};
use serde::{Deserialize, Serialize};
use tower_layer::Layer;

const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Registered {
    user_id: String,
    email: String,
    name: String,
    plan: String,
}

impl DomainEvent for Registered {
    const EVENT_TYPE: &'static str = "user.registered";
    const AGGREGATE_TYPE: &'static str = "user";

    fn aggregate_id(&self) -> String {
        self.user_id.clone()
    }
}

impl PersonalData for Registered {
    const PERSONAL_FIELDS: &'static [&'static str] = &["email", "name"];

    fn data_subject(&self) -> String {
        self.user_id.clone()
    }
}

fn registered(user: &str, email: &str, name: &str) -> Registered {
    Registered {
        user_id: user.to_owned(),
        email: email.to_owned(),
        name: name.to_owned(),
        plan: "pro".to_owned(),
    }
}

fn envelope(event: &Registered) -> EventEnvelope {
    envelope_of(event).unwrap().source("test").build()
}

fn plain_in(bytes: &[u8], needles: &[&str]) -> Vec<String> {
    needles
        .iter()
        .filter(|needle| {
            bytes
                .windows(needle.len())
                .any(|window| window == needle.as_bytes())
        })
        .map(|needle| (*needle).to_owned())
        .collect()
}

fn sealer() -> Sealer {
    Sealer::new(Arc::new(MemoryKeyStore::new()))
}

#[tokio::test]
async fn handlers_see_plain_fields_while_the_wire_carries_only_ciphertext() {
    let sealer = sealer();
    let inner = Arc::new(InMemoryBroker::new());
    let bus = EventBus::new(
        Arc::new(SealingBroker::new(inner, sealer.clone())),
        BusSettings::default(),
    );
    let wire = Recorder::new();
    let opened = Recorder::new();
    bus.subscribe(
        bus.subscription(Registered::EVENT_TYPE, "wire"),
        wire.clone(),
    )
    .await
    .unwrap();
    bus.subscribe(
        bus.subscription(Registered::EVENT_TYPE, "welcome"),
        OpenLayer::new(sealer.clone()).layer(opened.clone()),
    )
    .await
    .unwrap();

    let ada = registered("u-1", "ada@example.com", "Ada Lovelace");
    bus.publish(&envelope(&ada)).await.unwrap();

    let sealed = &wire.wait_for(1, WAIT).await.unwrap()[0];
    let bytes = sealed.to_message().unwrap().payload;
    assert_eq!(
        plain_in(&bytes, &["ada@example.com", "Ada Lovelace"]),
        Vec::<String>::new()
    );
    assert_eq!(sealed.payload["plan"], "pro", "other fields stay readable");
    assert_eq!(sealed.headers[SEALED_HEADER], "aes-256-gcm");
    let handled = &opened.wait_for(1, WAIT).await.unwrap()[0];
    assert_eq!(handled.decode::<Registered>().unwrap(), ada);
    assert!(!handled.headers.contains_key(SEALED_HEADER));

    // The same sealed bytes, delivered again after the subject was forgotten (a redelivery,
    // a redriven dead letter, a replay), reach the handler erased and still decode.
    assert!(sealer.forget("u-1").await.unwrap());
    let mut again = sealed.clone();
    again.idempotency_key = format!("{}-redelivered", again.idempotency_key);
    bus.publish(&again).await.unwrap();
    let handled = &opened.wait_for(2, WAIT).await.unwrap()[1];
    let erased = handled.decode::<Registered>().unwrap();
    assert_eq!(
        (erased.email.as_str(), erased.name.as_str()),
        (ERASED, ERASED)
    );
    assert_eq!(erased.plan, "pro");
    assert_eq!(handled.headers[ERASED_HEADER], "true");

    // Publishing more of a forgotten subject's personal data writes only the marker.
    bus.publish(&envelope(&ada)).await.unwrap();
    let later = &wire.wait_for(3, WAIT).await.unwrap()[2];
    assert_eq!(later.payload["email"], ERASED);
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn undeclared_events_pass_untouched() {
    let sealer = sealer();
    let bus = EventBus::new(
        Arc::new(SealingBroker::new(Arc::new(InMemoryBroker::new()), sealer)),
        BusSettings::default(),
    );
    let wire = Recorder::new();
    bus.subscribe(bus.subscription("note.added", "wire"), wire.clone())
        .await
        .unwrap();
    let note = EventEnvelope::builder("note.added", serde_json::json!({"text": "hello"})).build();
    bus.publish(&note).await.unwrap();
    assert_eq!(wire.wait_for(1, WAIT).await.unwrap()[0], note);
    bus.shutdown().await.unwrap();
}

fn fold(mut names: Vec<String>, event: &EventEnvelope) -> Vec<String> {
    names.push(event.decode::<Registered>().unwrap().name);
    names
}

#[tokio::test]
async fn the_store_keeps_events_and_snapshots_sealed_and_erases_a_forgotten_subject() {
    let sealer = sealer();
    let store = SealedStore::new(MemoryEventStore::new(2), sealer.clone());
    let ada = StreamId::new("user", "u-1");
    let bob = StreamId::new("user", "u-2");
    for (stream, email, name) in [
        (&ada, "ada@example.com", "Ada Lovelace"),
        (&ada, "ada@lovelace.org", "Ada King"),
        (&bob, "bob@example.com", "Bob Builder"),
        (&bob, "bob@builder.org", "Robert Builder"),
    ] {
        let event = envelope(&registered(&stream.aggregate_id, email, name));
        store
            .append(stream, ExpectedVersion::Any, vec![event])
            .await
            .unwrap();
    }
    let rebuilt = store
        .reconstruct_state(&ada, fold, Vec::new())
        .await
        .unwrap();
    assert_eq!(rebuilt.state, ["Ada Lovelace", "Ada King"]);
    assert!(rebuilt.snapshot_saved);
    store
        .reconstruct_state(&bob, fold, Vec::new())
        .await
        .unwrap();

    let personal = [
        "ada@example.com",
        "Ada Lovelace",
        "Ada King",
        "bob@example.com",
        "Bob Builder",
    ];
    let raw = store.inner().read_stream(&ada, 1, None).await.unwrap();
    let snapshot = store.inner().latest_snapshot(&ada).await.unwrap().unwrap();
    for bytes in raw
        .iter()
        .map(|e| serde_json::to_vec(&e.envelope).unwrap())
        .chain([serde_json::to_vec(&snapshot.state).unwrap()])
    {
        assert_eq!(plain_in(&bytes, &personal), Vec::<String>::new());
    }

    sealer.forget("u-1").await.unwrap();
    let read = store.read_stream(&ada, 1, None).await.unwrap();
    assert!(read.iter().all(|e| e.envelope.payload["email"] == ERASED
        && e.envelope.payload["name"] == ERASED
        && e.envelope.payload["plan"] == "pro"));
    assert_eq!(store.latest_snapshot(&ada).await.unwrap(), None);
    let rebuilt = store
        .reconstruct_state(&ada, fold, Vec::new())
        .await
        .unwrap();
    assert_eq!(rebuilt.state, [ERASED, ERASED]);
    assert_eq!(rebuilt.snapshot_version, None);

    let other = store
        .reconstruct_state(&bob, fold, Vec::new())
        .await
        .unwrap();
    assert_eq!(other.state, ["Bob Builder", "Robert Builder"]);
    assert_eq!(
        other.snapshot_version,
        Some(2),
        "another user's snapshot still opens"
    );
}
