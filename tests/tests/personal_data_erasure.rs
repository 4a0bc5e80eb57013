//! Erasure by crypto-shredding on the in-memory bus, on Kafka (a private Tansu) and on Redis,
//! each with the PostgreSQL event store, parked dead letters and key store: the user's e-mail
//! and name are nowhere in plain text, before or after the GDPR deletion saga; after it nothing
//! of theirs decrypts, another user's does, and a rebuilt projection completes with the marker.

use std::sync::Arc;

use event_bus_core::{BusSettings, InMemoryBroker};
use event_bus_tests::erasure::erasure_reaches_every_copy;

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn unique_prefix() -> String {
    format!("evbus-test-erasure-{}", uuid::Uuid::now_v7().simple())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_on_the_in_memory_bus() {
    erasure_reaches_every_copy(
        BusSettings::default(),
        Arc::new(InMemoryBroker::new()),
        &database_url(),
        async || Vec::new(),
    )
    .await;
}

#[cfg(feature = "kafka")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_on_kafka() {
    let server = event_bus_tests::kafka_server::TansuServer::start().expect("start Tansu");
    let prefix = unique_prefix();
    let settings = BusSettings::from_vars([
        ("EVENT_BUS_TYPE", "kafka"),
        (
            "KAFKA_BOOTSTRAP_SERVERS",
            server.bootstrap_servers().as_str(),
        ),
        ("KAFKA_SESSION_TIMEOUT_MS", "6000"),
        ("EVENT_BUS_TOPIC_PREFIX", prefix.as_str()),
    ])
    .expect("settings");
    let broker = event_bus_brokers::connect_broker(&settings)
        .await
        .expect("connect");
    erasure_reaches_every_copy(settings, broker, &database_url(), async || Vec::new()).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_on_redis() {
    const URL: &str = "redis://127.0.0.1:6379";
    let prefix = unique_prefix();
    let settings = BusSettings::from_vars([
        ("EVENT_BUS_TYPE", "redis"),
        ("REDIS_EVENT_URL", URL),
        ("EVENT_BUS_TOPIC_PREFIX", prefix.as_str()),
    ])
    .expect("settings");
    let broker = event_bus_brokers::connect_broker(&settings)
        .await
        .expect("connect");
    let client = redis::Client::open(URL).expect("redis client");
    // Every entry of every stream the test's prefix names, field names and values as stored.
    let streams = async || {
        let mut connection = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect to Redis");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut connection)
            .await
            .expect("KEYS");
        let mut bytes = Vec::new();
        for key in keys {
            let kind: String = redis::cmd("TYPE")
                .arg(&key)
                .query_async(&mut connection)
                .await
                .expect("TYPE");
            if kind != "stream" {
                continue;
            }
            let entries: Vec<(String, Vec<Vec<u8>>)> = redis::cmd("XRANGE")
                .arg(&key)
                .arg("-")
                .arg("+")
                .query_async(&mut connection)
                .await
                .expect("XRANGE");
            bytes.extend(entries.into_iter().map(|(_, fields)| fields.concat()));
        }
        assert!(!bytes.is_empty(), "the test's streams were read");
        bytes
    };
    erasure_reaches_every_copy(settings, broker, &database_url(), streams).await;
}
