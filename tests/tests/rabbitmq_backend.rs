//! The RabbitMQ pieces outside the conformance suite, against the server on 127.0.0.1:5672:
//! selection by EVENT_BUS_TYPE, a clear error for an unreachable server, messages nobody is
//! subscribed for, and delayed retries through TTL queues.
#![cfg(feature = "rabbitmq")]

use std::time::Duration;

use event_bus_brokers::ConnectError;
use event_bus_core::{BusSettings, EventBus, EventEnvelope, Nack, Recorder};
use event_bus_tests::stall_proxy::StallProxy;
use lapin::options::BasicGetOptions;
use lapin::{Connection, ConnectionProperties};

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const TIMEOUT: Duration = Duration::from_secs(30);

fn unique_prefix() -> String {
    format!("evbus-test-{}", uuid::Uuid::now_v7().simple())
}

async fn bus(prefix: &str) -> EventBus {
    let settings = BusSettings::from_vars([
        ("EVENT_BUS_TYPE", "rabbitmq"),
        ("RABBITMQ_URL", URL),
        ("EVENT_BUS_TOPIC_PREFIX", prefix),
    ])
    .expect("settings");
    event_bus_brokers::connect(settings).await.expect("connect")
}

/// The publish timeout of [`bus_behind`].
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);

/// A bus on the server through `proxy`, with a publish timeout of [`PUBLISH_TIMEOUT`].
async fn bus_behind(proxy: &StallProxy) -> EventBus {
    let prefix = unique_prefix();
    let url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port());
    let deadline = PUBLISH_TIMEOUT.as_secs().to_string();
    let settings = BusSettings::from_vars([
        ("EVENT_BUS_TYPE", "rabbitmq"),
        ("RABBITMQ_URL", url.as_str()),
        ("EVENT_BUS_TOPIC_PREFIX", prefix.as_str()),
        ("EVENT_BUS_ACK_DEADLINE_SECONDS", deadline.as_str()),
    ])
    .expect("settings");
    event_bus_brokers::connect(settings).await.expect("connect")
}

#[tokio::test]
async fn event_bus_type_rabbitmq_selects_it() {
    let bus = bus(&unique_prefix()).await;
    assert_eq!(bus.broker().name(), "rabbitmq");
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
async fn an_unreachable_server_is_a_clear_error() {
    let settings = BusSettings::from_vars([
        ("EVENT_BUS_TYPE", "rabbitmq"),
        ("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:1/%2f"),
    ])
    .unwrap();
    let error = event_bus_brokers::connect(settings)
        .await
        .err()
        .expect("nothing listens on port 1");
    assert!(
        matches!(
            error,
            ConnectError::Connect {
                backend: "rabbitmq",
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .starts_with("could not connect the rabbitmq backend"),
        "{error}"
    );
}

#[tokio::test]
async fn an_event_no_group_subscribed_to_is_kept_in_the_unrouted_queue() {
    let prefix = unique_prefix();
    let bus = bus(&prefix).await;
    let event = EventEnvelope::builder("nobody.listens", serde_json::json!({"n": 1})).build();
    bus.publish(&event).await.unwrap();

    let connection = Connection::connect(URL, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let kept = channel
        .basic_get(
            format!("{prefix}.unrouted").into(),
            BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
        .expect("the event is in the unrouted queue");
    let kept = serde_json::from_slice::<serde_json::Value>(&kept.delivery.data).unwrap();
    assert_eq!(kept["id"], event.id.to_string());
    channel
        .queue_delete(format!("{prefix}.unrouted").into(), Default::default())
        .await
        .unwrap();
    bus.shutdown().await.unwrap();
}

/// A server that goes silent during a batch (no reset, no close: a hung node or a dropped
/// network path) holds `publish_batch` no longer than the publish timeout: the events come
/// back as errors instead of the call waiting on confirms for ever, and once the server
/// answers again the next batch goes through on a new connection.
#[tokio::test]
async fn a_batch_to_a_silent_server_ends_by_the_publish_timeout() {
    let proxy = StallProxy::start(5672).await.expect("proxy");
    let bus = bus_behind(&proxy).await;
    let batch = || -> Vec<EventEnvelope> {
        (0..5)
            .map(|n| EventEnvelope::builder("batch.silent", serde_json::json!({ "n": n })).build())
            .collect()
    };
    for outcome in bus.publish_batch(&batch()).await {
        outcome.expect("published while the server answers");
    }

    proxy.stall();
    let outcomes = tokio::time::timeout(PUBLISH_TIMEOUT * 5, bus.publish_batch(&batch()))
        .await
        .expect("publish_batch returned by the publish timeout, not waiting on the silent server");
    assert_eq!(outcomes.len(), 5);
    for outcome in outcomes {
        let error = outcome.expect_err("an event the silent server never confirmed is an error");
        assert!(
            error.to_string().contains("kept failing"),
            "the error says the publish timed out: {error}"
        );
    }

    proxy.resume();
    for outcome in bus.publish_batch(&batch()).await {
        outcome.expect("published again once the server answers");
    }
    bus.shutdown().await.unwrap();
}

/// A server that goes silent holds a consumer's shutdown no longer than the publish timeout:
/// closing its channel waits for an answer that never comes, and a service stopping (a
/// rolling deploy, say) must still stop.
#[tokio::test]
async fn shutting_down_a_consumer_of_a_silent_server_ends_by_the_publish_timeout() {
    let proxy = StallProxy::start(5672).await.expect("proxy");
    let bus = bus_behind(&proxy).await;
    let recorder = Recorder::new();
    bus.subscribe(bus.subscription("silent.consumer", "g"), recorder.clone())
        .await
        .unwrap();
    let event = EventEnvelope::builder("silent.consumer", serde_json::json!({"n": 1})).build();
    bus.publish(&event).await.unwrap();
    recorder
        .wait_for(1, TIMEOUT)
        .await
        .expect("consumed while the server answers");

    proxy.stall();
    tokio::time::timeout(PUBLISH_TIMEOUT * 5, bus.shutdown())
        .await
        .expect("shutdown returned by the publish timeout, not waiting on the silent server")
        .expect("the bus closes; the channel's unanswered close is logged");
}

#[tokio::test]
async fn a_delayed_nack_comes_back_after_its_delay_with_the_next_attempt_number() {
    const DELAY: Duration = Duration::from_millis(1500);
    let prefix = unique_prefix();
    let bus = bus(&prefix).await;
    let config = bus.subscription("retry.later", "g");
    let mut subscription = bus.broker().subscribe(&config).await.unwrap();
    let event = EventEnvelope::builder("retry.later", serde_json::json!({"n": 1})).build();
    bus.publish(&event).await.unwrap();

    let first = tokio::time::timeout(TIMEOUT, subscription.next())
        .await
        .expect("delivered")
        .unwrap()
        .unwrap();
    assert_eq!(first.attempt(), 1);
    let nacked_at = tokio::time::Instant::now();
    first.nack(Nack::RequeueAfter(DELAY)).await.unwrap();

    let again = tokio::time::timeout(TIMEOUT, subscription.next())
        .await
        .expect("redelivered")
        .unwrap()
        .unwrap();
    assert!(
        nacked_at.elapsed() >= DELAY,
        "redelivered after {:?}, before the delay of {DELAY:?}",
        nacked_at.elapsed()
    );
    assert_eq!(again.attempt(), 2);
    assert_eq!(EventEnvelope::from_message(again.message()).unwrap(), event);
    again.ack().await.unwrap();
    subscription.close().await.unwrap();
    bus.shutdown().await.unwrap();
}

/// A dead letter published before any subscription dead-letters (by another service, or an
/// operator) waits in the queue of `DEAD_LETTER_SUBSCRIPTION`, declared when connecting, not
/// with the unrouted messages.
#[tokio::test]
async fn a_dead_letter_published_before_any_subscription_is_kept() {
    use event_bus_core::SubscriptionConfig;

    let prefix = unique_prefix();
    let keeper = format!("{prefix}-kept");
    let settings = BusSettings::from_vars([
        ("EVENT_BUS_TYPE", "rabbitmq"),
        ("RABBITMQ_URL", URL),
        ("EVENT_BUS_TOPIC_PREFIX", prefix.as_str()),
        ("DEAD_LETTER_SUBSCRIPTION", keeper.as_str()),
        ("RABBITMQ_QUEUE_EXPIRES_SECONDS", "120"),
    ])
    .unwrap();
    let bus = event_bus_brokers::connect(settings).await.unwrap();
    let event = EventEnvelope::builder("order.placed", serde_json::json!({"n": 1})).build();
    let topic = bus.topics().dead_letter_topic().to_owned();
    bus.broker()
        .publish(&topic, event.to_message().unwrap())
        .await
        .unwrap();
    let mut kept = bus
        .broker()
        .subscribe(&SubscriptionConfig::new(&topic, &keeper))
        .await
        .unwrap();
    let letter = tokio::time::timeout(TIMEOUT, kept.next())
        .await
        .expect("the dead letter was kept")
        .unwrap()
        .unwrap();
    assert_eq!(
        EventEnvelope::from_message(letter.message()).unwrap(),
        event
    );
    letter.ack().await.unwrap();
    kept.close().await.unwrap();
    bus.shutdown().await.unwrap();
}
