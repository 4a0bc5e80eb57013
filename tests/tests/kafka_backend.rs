//! The Kafka pieces outside the conformance suite, against the broker on 127.0.0.1:9092 (Tansu
//! with SQLite storage in `scripts/test.sh`): selection by EVENT_BUS_TYPE, a clear and bounded
//! error for an unreachable broker, commits that never pass an unsettled record, delayed
//! retries through the group's retry topic, and the bus's message size limit.
#![cfg(feature = "kafka")]

use std::time::{Duration, Instant};

use event_bus_brokers::ConnectError;
use event_bus_core::{
    BusError, BusSettings, EventBus, EventEnvelope, Message, Nack, Recorder, SubscriptionConfig,
};

const TIMEOUT: Duration = Duration::from_secs(30);

fn servers() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

fn settings(prefix: &str) -> BusSettings {
    BusSettings::from_vars([
        ("EVENT_BUS_TYPE", "kafka"),
        ("KAFKA_BOOTSTRAP_SERVERS", servers().as_str()),
        ("KAFKA_SESSION_TIMEOUT_MS", "6000"),
        ("EVENT_BUS_TOPIC_PREFIX", prefix),
    ])
    .expect("settings")
}

fn unique_prefix() -> String {
    format!("evbus-test-{}", uuid::Uuid::now_v7().simple())
}

async fn bus(prefix: &str) -> EventBus {
    event_bus_brokers::connect(settings(prefix))
        .await
        .expect("connect")
}

fn event_id(message: &Message) -> String {
    EventEnvelope::from_message(message)
        .expect("an envelope")
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_bus_type_kafka_selects_it() {
    let bus = bus(&unique_prefix()).await;
    assert_eq!(bus.broker().name(), "kafka");
    let recorder = Recorder::new();
    bus.subscribe(
        bus.subscription("user.registered", "audit"),
        recorder.clone(),
    )
    .await
    .unwrap();
    let event = EventEnvelope::builder("user.registered", serde_json::json!({"name": "Zoë"}))
        .aggregate("user", "u-1", 1)
        .build();
    bus.publish(&event).await.unwrap();
    assert_eq!(recorder.wait_for(1, TIMEOUT).await.unwrap()[0], event);
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_broker_is_a_clear_error_in_bounded_time() {
    let settings = BusSettings::from_vars([
        ("EVENT_BUS_TYPE", "kafka"),
        ("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1"),
    ])
    .unwrap();
    let started = Instant::now();
    let error = event_bus_brokers::connect(settings)
        .await
        .err()
        .expect("nothing listens on port 1");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            error,
            ConnectError::Connect {
                backend: "kafka",
                ..
            }
        ),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.starts_with(
            "could not connect the kafka backend: kafka backend: no Kafka broker at 127.0.0.1:1 answered within"
        ),
        "{text}"
    );
}

/// A member acks the first and third record of a key but not the second, then leaves (the
/// second still in its hands, as if it crashed while handling it). The group's next member
/// gets the second and the third again, never the first: the commit stops at the unsettled
/// record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_are_never_committed_past_an_unsettled_record() {
    let prefix = unique_prefix();
    let bus = bus(&prefix).await;
    let broker = bus.broker().clone();
    let topic = bus.topics().topic("ledger.entry");
    let config = SubscriptionConfig::new(&topic, format!("{prefix}-ledger"));
    let events: Vec<_> = (1..=3)
        .map(|n| {
            EventEnvelope::builder("ledger.entry", serde_json::json!({ "n": n }))
                .aggregate("ledger", "l-1", n)
                .build()
        })
        .collect();
    for event in &events {
        bus.publish(event).await.unwrap();
    }

    let mut first = broker.subscribe(&config).await.unwrap();
    let mut taken = Vec::new();
    for _ in 0..3 {
        let delivery = tokio::time::timeout(TIMEOUT, first.next())
            .await
            .expect("a delivery in time")
            .expect("open")
            .expect("received");
        taken.push(delivery);
    }
    let ids: Vec<_> = taken.iter().map(|d| event_id(d.message())).collect();
    assert_eq!(ids, events.iter().map(|e| e.id.clone()).collect::<Vec<_>>());
    let third = taken.pop().unwrap();
    let second = taken.pop().unwrap();
    let first_delivery = taken.pop().unwrap();
    first_delivery.ack().await.unwrap();
    third.ack().await.unwrap();
    first.close().await.unwrap();
    drop(second);

    let mut next = broker.subscribe(&config).await.unwrap();
    let mut again = Vec::new();
    for _ in 0..2 {
        let delivery = tokio::time::timeout(TIMEOUT, next.next())
            .await
            .expect("a delivery in time")
            .expect("open")
            .expect("received");
        again.push(event_id(delivery.message()));
        delivery.ack().await.unwrap();
    }
    assert_eq!(again, vec![events[1].id.clone(), events[2].id.clone()]);
    next.close().await.unwrap();
    bus.shutdown().await.unwrap();
}

/// A nack with a delay parks a copy on `{topic}.retry.{group}` with the attempt count, and the
/// record comes back no earlier than the delay, as attempt 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_retry_waits_on_the_retry_topic() {
    let prefix = unique_prefix();
    let bus = bus(&prefix).await;
    let broker = bus.broker().clone();
    let topic = bus.topics().topic("retry.me");
    let group = format!("{prefix}-retrying");
    let config = SubscriptionConfig::new(&topic, &group);
    let mut subscription = broker.subscribe(&config).await.unwrap();
    let event = EventEnvelope::builder("retry.me", serde_json::json!({})).build();
    bus.publish(&event).await.unwrap();

    let delivery = tokio::time::timeout(TIMEOUT, subscription.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(delivery.attempt(), 1);
    let nacked_at = Instant::now();
    delivery
        .nack(Nack::RequeueAfter(Duration::from_millis(1500)))
        .await
        .unwrap();

    // The copy is on the retry topic (its retry headers are read back, not passed on).
    let inspector = SubscriptionConfig::new(
        format!("{topic}.retry.{group}"),
        format!("{prefix}-inspector"),
    );
    let mut retries = broker.subscribe(&inspector).await.unwrap();
    let copy = tokio::time::timeout(TIMEOUT, retries.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event_id(copy.message()), event.id);
    copy.ack().await.unwrap();
    retries.close().await.unwrap();

    let again = tokio::time::timeout(TIMEOUT, subscription.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(nacked_at.elapsed() >= Duration::from_millis(1500));
    assert_eq!(event_id(again.message()), event.id);
    assert_eq!(again.attempt(), 2);
    again.ack().await.unwrap();
    subscription.close().await.unwrap();
    bus.shutdown().await.unwrap();
}

/// The bus's size limit (1 MiB by default, more than librdkafka's default `message.max.bytes`
/// of 1,000,000) is the backend's: a message of exactly the limit is published, alone or in a
/// batch, and consumed intact; one byte more is refused by the backend itself with the bus's
/// `MessageTooLarge`, also when a caller goes around the bus's own check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_message_size_limit_is_the_kafka_limit() {
    let prefix = unique_prefix();
    let bus = bus(&prefix).await;
    let limit = bus.settings().max_message_bytes;
    assert!(limit > 1_000_000, "the default limit is {limit}");
    let broker = bus.broker().clone();
    let topic = bus.topics().topic("large.blob");
    let largest = Message::new(vec![b'x'; limit - 10])
        .with_key("k")
        .with_header("h", "12345678");
    assert_eq!(largest.size(), limit);
    let too_large = Message::new(vec![b'y'; limit + 1]);

    broker
        .publish(&topic, largest.clone())
        .await
        .expect("a message of the limit is published");
    let refused = broker.publish(&topic, too_large.clone()).await;
    assert!(
        matches!(refused, Err(BusError::MessageTooLarge { size, limit: l }) if size == limit + 1 && l == limit),
        "{refused:?}"
    );
    let batch = broker
        .publish_batch(&topic, vec![largest.clone(), too_large])
        .await;
    assert!(batch[0].is_ok(), "{:?}", batch[0]);
    assert!(
        matches!(batch[1], Err(BusError::MessageTooLarge { .. })),
        "{:?}",
        batch[1]
    );

    let config = SubscriptionConfig::new(&topic, format!("{prefix}-large"));
    let mut subscription = broker.subscribe(&config).await.unwrap();
    for _ in 0..2 {
        let delivery = tokio::time::timeout(TIMEOUT, subscription.next())
            .await
            .expect("a delivery in time")
            .expect("open")
            .expect("received");
        assert_eq!(delivery.message(), &largest);
        delivery.ack().await.unwrap();
    }
    subscription.close().await.unwrap();
    bus.shutdown().await.unwrap();
}
