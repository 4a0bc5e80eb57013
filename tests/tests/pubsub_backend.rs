//! The Pub/Sub pieces outside the conformance suite, against the emulator at
//! PUBSUB_EMULATOR_HOST (default 127.0.0.1:8085): selection by EVENT_BUS_TYPE, a clear error
//! for an unreachable emulator, the subscription's filter and dead-letter policy as Pub/Sub
//! stores them, the client-side tenant check, Pub/Sub's own dead-lettering read back with the
//! bus's headers, a delayed nack, the dead-letter topic's keeping subscription, and an
//! endpoint that is not Pub/Sub.
#![cfg(feature = "pubsub")]

use std::time::{Duration, Instant};

use event_bus_brokers::ConnectError;
use event_bus_brokers::pubsub::{PubSubBroker, PubSubOptions, dead_letter_attempts};
use event_bus_core::dead_letter::headers;
use event_bus_core::{
    BusSettings, Delivery, EventBus, EventEnvelope, HandlerError, Nack, Publisher, Recorder,
    Subscriber, Subscription, SubscriptionConfig, handler_fn,
};

const TIMEOUT: Duration = Duration::from_secs(30);
const PROJECT: &str = "backend-tests";

fn emulator() -> String {
    std::env::var("PUBSUB_EMULATOR_HOST").unwrap_or_else(|_| "127.0.0.1:8085".to_owned())
}

fn unique_prefix() -> String {
    format!("evbus-test-{}", uuid::Uuid::now_v7().simple())
}

async fn broker() -> PubSubBroker {
    let options = PubSubOptions {
        project_id: PROJECT.to_owned(),
        emulator_host: Some(emulator()),
        ordering_keys: false,
        batching: true,
        ack_deadline: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(5),
        native_dead_letter: true,
        dead_letters: None,
        topology: Default::default(),
    };
    PubSubBroker::connect(options).await.expect("connect")
}

async fn next(subscription: &mut dyn Subscription) -> Box<dyn Delivery> {
    tokio::time::timeout(TIMEOUT, subscription.next())
        .await
        .expect("a delivery in time")
        .expect("the subscription is open")
        .expect("receiving works")
}

fn event_of(tenant: &str) -> EventEnvelope {
    EventEnvelope::builder("tenant.event", serde_json::json!({"tenant": tenant}))
        .tenant_id(tenant)
        .build()
}

#[tokio::test]
async fn event_bus_type_pubsub_selects_it() {
    let host = emulator();
    let prefix = unique_prefix();
    let settings = BusSettings::from_vars([
        ("EVENT_BUS_TYPE", "pubsub"),
        ("PUBSUB_EMULATOR_HOST", host.as_str()),
        ("GCP_PROJECT_ID", PROJECT),
        ("EVENT_BUS_TOPIC_PREFIX", prefix.as_str()),
    ])
    .expect("settings");
    let bus = event_bus_brokers::connect(settings).await.expect("connect");
    assert_eq!(bus.broker().name(), "pubsub");
    let recorder = Recorder::new();
    bus.subscribe(
        bus.subscription("user.registered", "audit"),
        recorder.clone(),
    )
    .await
    .unwrap();
    let event =
        EventEnvelope::builder("user.registered", serde_json::json!({"name": "Zoë"})).build();
    bus.publish(&event).await.unwrap();
    assert_eq!(recorder.wait_for(1, TIMEOUT).await.unwrap()[0], event);
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_emulator_is_a_clear_error_in_bounded_time() {
    let settings = BusSettings::from_vars([
        ("EVENT_BUS_TYPE", "pubsub"),
        ("PUBSUB_EMULATOR_HOST", "127.0.0.1:1"),
    ])
    .unwrap();
    let started = Instant::now();
    let error = event_bus_brokers::connect(settings)
        .await
        .err()
        .expect("nothing listens on port 1");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            error,
            ConnectError::Connect {
                backend: "pubsub",
                ..
            }
        ),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.starts_with(
            "could not connect the pubsub backend: pubsub backend: no connection to Pub/Sub at 127.0.0.1:1"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn the_subscription_is_created_with_the_tenant_filter_and_dead_letter_policy() {
    let broker = broker().await;
    let prefix = unique_prefix();
    let config = SubscriptionConfig::new(format!("{prefix}-orders"), format!("{prefix}-billing"))
        .tenant("acme")
        .ordering(true)
        .dead_letter_topic(format!("{prefix}-dead-letter"))
        .max_delivery_attempts(3);
    let subscription = broker.subscribe(&config).await.expect("subscribe");
    subscription.close().await.expect("close");

    let (topic, stored) = broker
        .client()
        .subscription(&config.consumer_group)
        .config(None)
        .await
        .expect("the subscription exists");
    assert_eq!(topic, format!("projects/{PROJECT}/topics/{prefix}-orders"));
    assert_eq!(stored.filter, r#"attributes.tenant_id = "acme""#);
    assert!(stored.enable_message_ordering);
    let policy = stored.dead_letter_policy.expect("a dead-letter policy");
    assert_eq!(
        policy.dead_letter_topic,
        format!("projects/{PROJECT}/topics/{prefix}-dead-letter")
    );
    assert_eq!(policy.max_delivery_attempts, dead_letter_attempts(3));
    assert_eq!(policy.max_delivery_attempts, 5);

    let mut unfiltered = config.clone();
    unfiltered.tenant = None; // the same subscription name, without the filter
    let refused = broker.subscribe(&unfiltered).await;
    let error = refused.err().expect("a filter cannot change").to_string();
    assert!(
        error.contains(r#"exists with filter `attributes.tenant_id = "acme"`"#),
        "{error}"
    );
}

#[tokio::test]
async fn a_delivery_of_another_tenant_is_not_handed_out() {
    let broker = broker().await;
    let prefix = unique_prefix();
    let config = SubscriptionConfig::new(format!("{prefix}-tenant"), format!("{prefix}-acme"))
        .tenant("acme")
        .max_in_flight(1);
    let mut subscription = broker.subscribe(&config).await.expect("subscribe");
    for tenant in ["globex", "globex", "globex", "acme"] {
        let message = event_of(tenant).to_message().unwrap();
        broker.publish(&config.topic, message).await.unwrap();
    }
    let delivery = next(subscription.as_mut()).await;
    let envelope = EventEnvelope::from_message(delivery.message()).unwrap();
    assert_eq!(
        envelope.tenant_id.as_deref(),
        Some("acme"),
        "the emulator does not apply the filter; the subscription must skip other tenants"
    );
    delivery.ack().await.unwrap();
    subscription.close().await.unwrap();
}

#[tokio::test]
async fn what_pubsub_dead_letters_itself_arrives_with_the_bus_headers() {
    let broker = broker().await;
    let prefix = unique_prefix();
    let dead_letter_topic = format!("{prefix}-dead-letter");
    let mut dead_letters = broker
        .subscribe(&SubscriptionConfig::new(
            &dead_letter_topic,
            format!("{prefix}-inspector"),
        ))
        .await
        .unwrap();
    let config = SubscriptionConfig::new(format!("{prefix}-poison"), format!("{prefix}-g"))
        .dead_letter_topic(&dead_letter_topic)
        .max_delivery_attempts(1);
    let mut subscription = broker.subscribe(&config).await.unwrap();
    let event = event_of("acme");
    broker
        .publish(&config.topic, event.to_message().unwrap())
        .await
        .unwrap();

    // A consumer that never settles on its own (as a crashing one): nacked every time,
    // never dead-lettered by the bus. Pub/Sub gives up after its own policy's attempts.
    let native = dead_letter_attempts(1);
    for expected in 1..=u32::try_from(native).unwrap() {
        let delivery = next(subscription.as_mut()).await;
        assert_eq!(
            delivery.attempt(),
            expected,
            "Pub/Sub's delivery attempt is read back"
        );
        delivery.nack(Nack::Requeue).await.unwrap();
    }
    let letter = next(dead_letters.as_mut()).await;
    let message = letter.message().clone();
    letter.ack().await.unwrap();
    assert_eq!(EventEnvelope::from_message(&message).unwrap(), event);
    let h = &message.headers;
    assert_eq!(h[headers::REASON], "max-attempts-exceeded");
    assert_eq!(h[headers::ATTEMPTS], native.to_string());
    assert_eq!(h[headers::ORIGINAL_TOPIC], config.topic);
    assert_eq!(h[headers::SUBSCRIPTION], config.consumer_group);
    subscription.close().await.unwrap();
    dead_letters.close().await.unwrap();
}

#[tokio::test]
async fn a_delayed_nack_is_redelivered_after_the_delay() {
    let broker = broker().await;
    let prefix = unique_prefix();
    let config = SubscriptionConfig::new(format!("{prefix}-later"), format!("{prefix}-g"));
    let mut subscription = broker.subscribe(&config).await.unwrap();
    let event = event_of("acme");
    broker
        .publish(&config.topic, event.to_message().unwrap())
        .await
        .unwrap();
    let first = next(subscription.as_mut()).await;
    assert_eq!(first.attempt(), 1);
    let nacked = Instant::now();
    first
        .nack(Nack::RequeueAfter(Duration::from_secs(2)))
        .await
        .unwrap();
    let again = next(subscription.as_mut()).await;
    assert!(
        nacked.elapsed() >= Duration::from_millis(1900),
        "redelivered after {:?}",
        nacked.elapsed()
    );
    assert_eq!(again.attempt(), 2);
    assert_eq!(EventEnvelope::from_message(again.message()).unwrap(), event);
    again.ack().await.unwrap();
    subscription.close().await.unwrap();
}

/// A bus whose dead letters are kept by a subscription of the test's own; returns it too.
async fn bus_keeping_dead_letters() -> (EventBus, String) {
    let host = emulator();
    let prefix = unique_prefix();
    let keeper = format!("{prefix}-kept-dead-letters");
    let settings = BusSettings::from_vars([
        ("EVENT_BUS_TYPE", "pubsub"),
        ("PUBSUB_EMULATOR_HOST", host.as_str()),
        ("GCP_PROJECT_ID", PROJECT),
        ("EVENT_BUS_TOPIC_PREFIX", prefix.as_str()),
        ("DEAD_LETTER_SUBSCRIPTION", keeper.as_str()),
    ])
    .unwrap();
    let bus = event_bus_brokers::connect(settings).await.expect("connect");
    (bus, keeper)
}

/// The next dead letter the keeping subscription `keeper` holds, acknowledged.
async fn kept_dead_letter(bus: &EventBus, keeper: &str) -> event_bus_core::Message {
    let dead_letters = SubscriptionConfig::new(bus.topics().dead_letter_topic(), keeper);
    let mut kept = bus.broker().subscribe(&dead_letters).await.unwrap();
    let letter = next(kept.as_mut()).await;
    let message = letter.message().clone();
    letter.ack().await.unwrap();
    kept.close().await.unwrap();
    message
}

/// Issue 17, item 2: Pub/Sub keeps a message only for subscriptions that exist when it is
/// published, so the dead-letter topic's keeping subscription (`DEAD_LETTER_SUBSCRIPTION`)
/// exists before anything fails, and keeps what a handler dead-letters.
#[tokio::test]
async fn a_dead_letter_waits_in_the_subscription_created_with_its_topic() {
    let (bus, keeper) = bus_keeping_dead_letters().await;
    let failing =
        handler_fn(|_| async { Err(HandlerError::permanent(std::io::Error::other("refused"))) });
    let handle = bus
        .subscribe(bus.subscription("order.placed", "billing"), failing)
        .await
        .unwrap();
    let event = EventEnvelope::builder("order.placed", serde_json::json!({"n": 1})).build();
    bus.publish(&event).await.unwrap();
    let started = Instant::now();
    while handle.stats().snapshot().dead_lettered == 0 {
        assert!(
            started.elapsed() < TIMEOUT,
            "the event was not dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let letter = kept_dead_letter(&bus, &keeper).await;
    assert_eq!(EventEnvelope::from_message(&letter).unwrap(), event);
    assert_eq!(letter.headers[headers::REASON], "permanent-failure");
    bus.shutdown().await.unwrap();
}

/// Issue 17, item 8: an endpoint that accepts connections but is not Pub/Sub fails `connect`
/// within the connect timeout, naming the endpoint.
#[tokio::test]
async fn an_endpoint_that_is_not_pubsub_is_refused_at_connect() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let _ = socket.write_all(b"-ERR this is not Pub/Sub\r\n").await;
                let mut sink = Vec::new();
                let _ = tokio::io::AsyncReadExt::read_to_end(&mut socket, &mut sink).await;
            });
        }
    });
    let settings = BusSettings::from_vars([
        ("EVENT_BUS_TYPE", "pubsub"),
        ("PUBSUB_EMULATOR_HOST", address.as_str()),
    ])
    .unwrap();
    let started = Instant::now();
    let error = event_bus_brokers::connect(settings)
        .await
        .err()
        .expect("the endpoint is not Pub/Sub");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let text = error.to_string();
    assert!(
        text.contains(&format!("no connection to Pub/Sub at {address}")),
        "{text}"
    );
}

/// A dead letter published before any subscription dead-letters (by another service, or an
/// operator) is kept too: connecting makes the dead-letter topic and its keeping subscription.
#[tokio::test]
async fn a_dead_letter_published_before_any_subscription_is_kept() {
    let (bus, keeper) = bus_keeping_dead_letters().await;
    let event = EventEnvelope::builder("order.placed", serde_json::json!({"n": 1})).build();
    bus.broker()
        .publish(
            bus.topics().dead_letter_topic(),
            event.to_message().unwrap(),
        )
        .await
        .unwrap();
    let letter = kept_dead_letter(&bus, &keeper).await;
    assert_eq!(EventEnvelope::from_message(&letter).unwrap(), event);
    bus.shutdown().await.unwrap();
}
