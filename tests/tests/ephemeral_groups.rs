//! Instance-scoped consumer groups (`SubscriptionConfig::ephemeral`, as saga replies and
//! `eventbus tail` use them) are removed from the broker when their owner stops: after ten
//! start/stop cycles, the broker holds none of them. Against Redis (127.0.0.1:6379),
//! RabbitMQ (127.0.0.1:5672), NATS (127.0.0.1:4222) and Pub/Sub (the emulator at
//! `PUBSUB_EMULATOR_HOST`).

use std::time::Duration;

use event_bus_core::{BusSettings, EventBus, EventEnvelope, Recorder};

const TIMEOUT: Duration = Duration::from_secs(30);
const CYCLES: usize = 10;

/// Starts a bus, handles one event in a group of the instance's own, and stops, ten times;
/// returns the topic and the groups made.
async fn start_and_stop(vars: &[(&str, &str)]) -> (String, Vec<String>) {
    let mut groups = Vec::new();
    let mut topic = String::new();
    for _ in 0..CYCLES {
        let settings = BusSettings::from_vars(vars.iter().copied()).expect("settings");
        let bus: EventBus = event_bus_brokers::connect(settings).await.expect("connect");
        let group = format!("saga-replies-{}", uuid::Uuid::now_v7().simple());
        let config = bus.subscription("saga.reply", &group).ephemeral();
        topic.clone_from(&config.topic);
        groups.push(config.consumer_group.clone());
        let recorder = Recorder::new();
        bus.subscribe(config, recorder.clone()).await.unwrap();
        bus.publish(&EventEnvelope::builder("saga.reply", serde_json::json!({})).build())
            .await
            .unwrap();
        recorder
            .wait_for(1, TIMEOUT)
            .await
            .expect("the group works while it lives");
        bus.shutdown().await.unwrap();
    }
    (topic, groups)
}

fn prefix() -> String {
    format!("evbus-ephemeral-{}", uuid::Uuid::now_v7().simple())
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_holds_no_group_of_a_stopped_instance() {
    let prefix = prefix();
    let (topic, groups) = start_and_stop(&[
        ("EVENT_BUS_TYPE", "redis"),
        ("REDIS_EVENT_URL", "redis://127.0.0.1:6379"),
        ("EVENT_BUS_TOPIC_PREFIX", &prefix),
    ])
    .await;
    let mut conn = redis::Client::open("redis://127.0.0.1:6379")
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let left: Vec<redis::Value> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(&topic)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        left.is_empty(),
        "{} groups of {} left",
        left.len(),
        groups.len()
    );
    for group in &groups {
        let delayed: bool = redis::cmd("EXISTS")
            .arg(format!("{topic}:delayed:{group}"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(!delayed);
    }
    let _: () = redis::cmd("DEL")
        .arg(&topic)
        .query_async(&mut conn)
        .await
        .unwrap();
}

#[cfg(feature = "rabbitmq")]
#[tokio::test]
async fn rabbitmq_holds_no_queue_of_a_stopped_instance() {
    use lapin::options::QueueDeclareOptions;
    use lapin::types::FieldTable;
    use lapin::{Connection, ConnectionProperties};

    const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
    let prefix = prefix();
    let (topic, groups) = start_and_stop(&[
        ("EVENT_BUS_TYPE", "rabbitmq"),
        ("RABBITMQ_URL", URL),
        ("EVENT_BUS_TOPIC_PREFIX", &prefix),
    ])
    .await;
    let connection = Connection::connect(URL, ConnectionProperties::default())
        .await
        .unwrap();
    let mut left = Vec::new();
    for group in &groups {
        // A passive declare fails (and closes its channel) when the queue does not exist.
        let channel = connection.create_channel().await.unwrap();
        let queue = format!("{topic}.{group}");
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        if channel
            .queue_declare(queue.as_str().into(), passive, FieldTable::default())
            .await
            .is_ok()
        {
            left.push(queue);
        }
    }
    assert!(left.is_empty(), "queues left: {left:?}");
}

#[cfg(feature = "nats")]
#[tokio::test]
async fn nats_holds_no_consumer_of_a_stopped_instance() {
    use futures::TryStreamExt;

    let prefix = prefix();
    let (topic, groups) = start_and_stop(&[
        ("EVENT_BUS_TYPE", "nats"),
        ("NATS_URL", "nats://127.0.0.1:4222"),
        ("EVENT_BUS_TOPIC_PREFIX", &prefix),
    ])
    .await;
    let client = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    let stream = jetstream
        .get_stream(&topic)
        .await
        .expect("the topic's stream");
    let left: Vec<String> = stream.consumer_names().try_collect().await.unwrap();
    assert!(
        left.is_empty(),
        "{} consumers of {} groups left: {left:?}",
        left.len(),
        groups.len()
    );
    jetstream.delete_stream(&topic).await.unwrap();
}

#[cfg(feature = "pubsub")]
#[tokio::test]
async fn pubsub_holds_no_subscription_of_a_stopped_instance() {
    use event_bus_brokers::pubsub::{PubSubBroker, PubSubOptions};
    use event_bus_core::{Subscriber, SubscriptionConfig};

    let host =
        std::env::var("PUBSUB_EMULATOR_HOST").unwrap_or_else(|_| "127.0.0.1:8085".to_owned());
    let prefix = prefix();
    let vars = [
        ("EVENT_BUS_TYPE", "pubsub"),
        ("PUBSUB_EMULATOR_HOST", host.as_str()),
        ("GCP_PROJECT_ID", "ephemeral-tests"),
        ("EVENT_BUS_TOPIC_PREFIX", prefix.as_str()),
    ];
    let (topic, groups) = start_and_stop(&vars).await;
    let settings = BusSettings::from_vars(vars).unwrap();
    let broker = PubSubBroker::connect(PubSubOptions::from_settings(&settings).unwrap())
        .await
        .unwrap();
    let mut left = Vec::new();
    for group in &groups {
        if broker
            .client()
            .subscription(group)
            .exists(None)
            .await
            .unwrap()
        {
            left.push(group.clone());
        }
    }
    assert!(left.is_empty(), "subscriptions left: {left:?}");

    // While its owner lives, the group carries Pub/Sub's shortest expiry, so it goes a day
    // after an owner that died without closing.
    let group = format!("{prefix}-live");
    let live = broker
        .subscribe(&SubscriptionConfig::new(&topic, &group).ephemeral())
        .await
        .unwrap();
    let (_, stored) = broker
        .client()
        .subscription(&group)
        .config(None)
        .await
        .unwrap();
    let ttl = stored.expiration_policy.and_then(|policy| policy.ttl);
    assert_eq!(ttl.map(|ttl| ttl.seconds), Some(86_400));
    live.close().await.unwrap();
    assert!(
        !broker
            .client()
            .subscription(&group)
            .exists(None)
            .await
            .unwrap()
    );
}
