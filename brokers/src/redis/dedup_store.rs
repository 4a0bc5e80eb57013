//! Idempotency keys in Redis, shared by every process of a consumer group.

use std::time::Duration;

use async_trait::async_trait;
use event_bus_core::BusError;
use event_bus_core::idempotency::{Claim, DedupError, DedupStore};
use redis::aio::ConnectionManager;

use super::broker::{RedisOptions, connection};
use super::client::{RedisTls, client};

const IN_PROGRESS: &str = "in-progress";
const DONE: &str = "done";
/// Extends a claim only while it is one: a key another holder completed stays done.
const RENEW_IF_IN_PROGRESS: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0";

/// A [`DedupStore`] in Redis: `SET NX PX` claims, values `in-progress` or `done`, expiring.
#[derive(Clone)]
pub struct RedisDedupStore {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisDedupStore {
    /// Connects to the server at `url`, keeping keys under `{prefix}:`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, BusError> {
        let client = client(url, &RedisTls::default())?;
        Self::from_client(&client, prefix).await
    }

    /// Connects to the server `options` name (with their TLS files), keeping keys under
    /// `{prefix}:`.
    pub async fn connect_with(options: &RedisOptions, prefix: &str) -> Result<Self, BusError> {
        Self::from_client(&client(&options.url, &options.tls)?, prefix).await
    }

    async fn from_client(client: &redis::Client, prefix: &str) -> Result<Self, BusError> {
        Ok(Self {
            conn: connection(client).await?,
            prefix: prefix.to_owned(),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.prefix)
    }
}

fn dedup_error(error: redis::RedisError) -> DedupError {
    DedupError(Box::new(error))
}

#[async_trait]
impl DedupStore for RedisDedupStore {
    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, DedupError> {
        let mut conn = self.conn.clone();
        let acquired: Option<String> = redis::cmd("SET")
            .arg(self.key(key))
            .arg(IN_PROGRESS)
            .arg("NX")
            .arg("PX")
            .arg(lease.as_millis().max(1) as u64)
            .query_async(&mut conn)
            .await
            .map_err(dedup_error)?;
        if acquired.is_some() {
            return Ok(Claim::Acquired);
        }
        let state: Option<String> = redis::cmd("GET")
            .arg(self.key(key))
            .query_async(&mut conn)
            .await
            .map_err(dedup_error)?;
        Ok(match state.as_deref() {
            Some(DONE) => Claim::Done,
            Some(_) => Claim::InProgress,
            None => return Box::pin(self.claim(key, lease)).await,
        })
    }

    async fn renew(&self, key: &str, lease: Duration) -> Result<(), DedupError> {
        let mut conn = self.conn.clone();
        redis::Script::new(RENEW_IF_IN_PROGRESS)
            .key(self.key(key))
            .arg(IN_PROGRESS)
            .arg(lease.as_millis().max(1) as u64)
            .invoke_async::<i64>(&mut conn)
            .await
            .map(drop)
            .map_err(dedup_error)
    }

    async fn complete(&self, key: &str, ttl: Duration) -> Result<(), DedupError> {
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.key(key))
            .arg(DONE)
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .query_async::<()>(&mut conn)
            .await
            .map_err(dedup_error)
    }

    async fn release(&self, key: &str) -> Result<(), DedupError> {
        let mut conn = self.conn.clone();
        redis::cmd("DEL")
            .arg(self.key(key))
            .query_async::<()>(&mut conn)
            .await
            .map_err(dedup_error)
    }
}
