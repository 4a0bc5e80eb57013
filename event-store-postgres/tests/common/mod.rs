//! Shared setup: a store in a fresh schema of the local PostgreSQL server, and a bus on the
//! local Redis server under a fresh topic prefix.

#![allow(dead_code)]

use std::time::Duration;

use event_bus_core::{BusSettings, EventBus};
use event_store_postgres::PgEventStore;
use tokio::sync::OnceCell;

/// The local server, as `DATABASE_URL` names it by default.
pub const URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The local Redis server.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";
/// How long a test waits for a condition.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Prefix of the schemas tests create.
const PREFIX: &str = "evbus_t_";

/// The PostgreSQL URL tests use.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| URL.to_owned())
}

/// A schema name no other test uses (its UUID v7 says when it was made).
pub fn unique_schema() -> String {
    format!("{PREFIX}{}", uuid::Uuid::now_v7().simple())
}

/// Drops test schemas more than an hour old, once per test binary, so runs do not pile up.
async fn sweep_old_schemas(store: &PgEventStore) {
    static SWEPT: OnceCell<()> = OnceCell::const_new();
    SWEPT
        .get_or_init(|| async {
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, $1)",
            )
            .bind(PREFIX)
            .fetch_all(store.pool())
            .await
            .unwrap_or_default();
            let hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
            for name in names {
                let made = uuid::Uuid::parse_str(&name[PREFIX.len()..])
                    .ok()
                    .and_then(|id| id.get_timestamp())
                    .and_then(|ts| {
                        let (secs, _) = ts.to_unix();
                        chrono::DateTime::from_timestamp(secs as i64, 0)
                    });
                if made.is_some_and(|made| made < hour_ago) {
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                        .execute(store.pool())
                        .await;
                }
            }
        })
        .await;
}

/// A store in a new schema, snapshotting every `snapshot_interval` folded events.
pub async fn store(snapshot_interval: u64) -> PgEventStore {
    let store = PgEventStore::connect(&database_url(), &unique_schema())
        .await
        .expect("connect to PostgreSQL on 127.0.0.1:5432")
        .with_snapshot_interval(snapshot_interval);
    sweep_old_schemas(&store).await;
    store
}

/// A bus on the local Redis under a topic prefix of its own.
pub async fn redis_bus() -> EventBus {
    let prefix = format!("evbus-store-{}", uuid::Uuid::now_v7().simple());
    let settings = BusSettings::from_vars([
        ("EVENT_BUS_TYPE", "redis"),
        ("REDIS_EVENT_URL", REDIS_URL),
        ("EVENT_BUS_TOPIC_PREFIX", prefix.as_str()),
        ("DEAD_LETTER_MAX_RETRIES", "2"),
    ])
    .expect("settings");
    event_bus_brokers::connect(settings)
        .await
        .expect("connect to Redis on 127.0.0.1:6379")
}

/// A plain connection to the local Redis.
pub async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(REDIS_URL)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("connect to Redis")
}

#[cfg(feature = "dedup-worker")]
pub mod workers;
