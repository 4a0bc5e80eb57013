//! Interoperability with a service in another language: `tests/interop/peer.py` (the official
//! CloudEvents SDK for Python and each broker's own Python client) publishes standard
//! structured and binary events that the bus handles, and decodes the bus's events, published
//! in both modes, with the SDK's binding decoders. Needs `EVENT_BUS_INTEROP_PYTHON` (set by
//! scripts/test.sh); without it each test fails saying how to make the venv.

use std::time::Duration;

use event_bus_core::envelope::ContentMode;
use event_bus_core::{BusSettings, EventEnvelope, Recorder};
use event_bus_tests::python_peer::PythonPeer;
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(60);
/// The peer's events have this type; the bus's events for the peer have [`REPLY_TYPE`].
const EVENT_TYPE: &str = "interop.event";
const REPLY_TYPE: &str = "interop.reply";
const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/// Settings of one run: the backend's variables and a fresh topic prefix.
fn settings(vars: &[(&str, &str)], prefix: &str) -> BusSettings {
    let mut all = vec![("EVENT_BUS_TOPIC_PREFIX", prefix)];
    all.extend_from_slice(vars);
    BusSettings::from_vars(all).expect("settings")
}

fn prefix() -> String {
    format!("interop-{}", uuid::Uuid::now_v7().simple())
}

/// Both directions on one backend; `peer_options` connect the peer to the same server.
async fn both_directions(settings: BusSettings, peer: PythonPeer) {
    let bus = event_bus_brokers::connect(settings.clone())
        .await
        .expect("connect");
    let topics = bus.topics().clone();

    // Python -> Rust: a structured and a binary event, handled as CloudEvents.
    let recorder = Recorder::new();
    let subscription = bus
        .subscribe(bus.subscription(EVENT_TYPE, "rust"), recorder.clone())
        .await
        .expect("subscribe");
    let replies = Recorder::new();
    bus.subscribe(bus.subscription(REPLY_TYPE, "rust"), replies.clone())
        .await
        .expect("subscribe to the replies, so their topic exists");
    let topic = topics.topic(EVENT_TYPE);
    tokio::task::block_in_place(|| peer.produce(&topic)).expect("the peer publishes");
    let handled = recorder.wait_for(2, TIMEOUT).await.expect("both handled");
    let by_id = |id: &str| {
        handled
            .iter()
            .find(|event| event.id == id)
            .unwrap_or_else(|| panic!("{id} not handled: {handled:?}"))
    };
    let structured = by_id("py-structured-1");
    assert_eq!(structured.source, "/python/peer");
    assert_eq!(structured.aggregate_id, "order-1");
    assert_eq!(structured.tenant_id.as_deref(), Some("acme"));
    assert_eq!(structured.payload, json!({"total": 12, "name": "Zoë"}));
    assert_eq!(structured.extensions["traceparent"], TRACEPARENT);
    let binary = by_id("py-binary-1");
    assert_eq!(binary.aggregate_id, "note-1");
    assert_eq!(binary.data_content_type(), "text/plain; charset=utf-8");
    assert_eq!(&*binary.data_bytes(), "grüß dich ✓".as_bytes());
    assert_eq!(binary.extensions["partitionkey"], "p-7");
    let stats = subscription.stats().snapshot();
    assert_eq!(stats.dead_lettered, 0, "{stats}");

    // Rust -> Python: one event per content mode, decoded by the SDK.
    let reply_topic = topics.topic(REPLY_TYPE);
    let consumer =
        tokio::task::block_in_place(|| peer.consume(&reply_topic, 2)).expect("the peer consumes");
    let event = |id: &str| {
        EventEnvelope::builder(REPLY_TYPE, json!({"order": "o-1", "name": "Zoë"}))
            .id(id)
            .source("rust/interop")
            .aggregate("order", "o-1", 3)
            .tenant_id("acme")
            .extension("traceparent", TRACEPARENT)
            .build()
    };
    bus.publish(&event("rust-structured-1"))
        .await
        .expect("publish structured");
    let mut binary_settings = settings;
    binary_settings.content_mode = ContentMode::Binary;
    let binary_bus = event_bus_brokers::connect(binary_settings)
        .await
        .expect("connect");
    binary_bus
        .publish(&event("rust-binary-1"))
        .await
        .expect("publish binary");
    let decoded = tokio::task::block_in_place(|| consumer.events()).expect("the peer decodes");
    let mut ids: Vec<&str> = decoded
        .iter()
        .map(|e| e["attributes"]["id"].as_str().unwrap_or_default())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["rust-binary-1", "rust-structured-1"], "{decoded:?}");
    for event in &decoded {
        let attributes = &event["attributes"];
        assert_eq!(attributes["specversion"], "1.0", "{event}");
        assert_eq!(attributes["type"], REPLY_TYPE, "{event}");
        assert_eq!(attributes["source"], "rust/interop", "{event}");
        assert_eq!(attributes["subject"], "o-1", "{event}");
        assert_eq!(attributes["tenantid"], "acme", "{event}");
        assert_eq!(attributes["aggregatetype"], "order", "{event}");
        assert_eq!(attributes["traceparent"], TRACEPARENT, "{event}");
        assert_eq!(
            event["data"],
            json!({"order": "o-1", "name": "Zoë"}),
            "{event}"
        );
    }
    binary_bus.shutdown().await.expect("shutdown");
    bus.shutdown().await.expect("shutdown");
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_rust_interoperate_on_redis_streams() {
    let peer = PythonPeer::new("redis", &["--url", "redis://127.0.0.1:6379"]).expect("the peer");
    both_directions(settings(&[("EVENT_BUS_TYPE", "redis")], &prefix()), peer).await;
}

#[cfg(feature = "rabbitmq")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_rust_interoperate_on_rabbitmq() {
    let prefix = prefix();
    let url = "amqp://guest:guest@127.0.0.1:5672/%2f";
    let peer =
        PythonPeer::new("rabbitmq", &["--url", url, "--exchange", &prefix]).expect("the peer");
    let vars = [
        ("EVENT_BUS_TYPE", "rabbitmq"),
        ("RABBITMQ_URL", url),
        ("RABBITMQ_QUEUE_EXPIRES_SECONDS", "60"),
    ];
    both_directions(settings(&vars, &prefix), peer).await;
}

#[cfg(feature = "kafka")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_rust_interoperate_on_kafka() {
    let server = event_bus_tests::kafka_server::TansuServer::start().expect("start Tansu");
    let bootstrap = server.bootstrap_servers();
    let peer = PythonPeer::new("kafka", &["--bootstrap", &bootstrap]).expect("the peer");
    let vars = [
        ("EVENT_BUS_TYPE", "kafka"),
        ("KAFKA_BOOTSTRAP_SERVERS", bootstrap.as_str()),
        ("KAFKA_SESSION_TIMEOUT_MS", "6000"),
    ];
    both_directions(settings(&vars, &prefix()), peer).await;
}

#[cfg(feature = "pubsub")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_rust_interoperate_on_pubsub() {
    let emulator = std::env::var("PUBSUB_EMULATOR_HOST")
        .expect("PUBSUB_EMULATOR_HOST names the Pub/Sub emulator (scripts/test.sh starts one)");
    let peer = PythonPeer::new("pubsub", &["--project", "local-project"]).expect("the peer");
    let vars = [
        ("EVENT_BUS_TYPE", "pubsub"),
        ("PUBSUB_EMULATOR_HOST", emulator.as_str()),
        ("GCP_PROJECT_ID", "local-project"),
    ];
    both_directions(settings(&vars, &prefix()), peer).await;
}

#[cfg(feature = "nats")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_rust_interoperate_on_nats() {
    let server = event_bus_tests::nats_server::NatsServer::start().expect("start nats-server");
    let url = server.url();
    let peer = PythonPeer::new("nats", &["--url", &url]).expect("the peer");
    let vars = [("EVENT_BUS_TYPE", "nats"), ("NATS_URL", url.as_str())];
    both_directions(settings(&vars, &prefix()), peer).await;
}
