//! In-process dedup store: per-key expiry and a cap on how many keys it keeps, on a
//! concurrent cache (`moka`), so claims of different keys never wait for one lock.

use std::time::Duration;

use async_trait::async_trait;
use moka::ops::compute::Op;
use moka::sync::Cache;
use tokio::time::Instant;

use super::{Claim, DedupError, DedupStore};

/// Keys kept at most unless told otherwise; past it the least used are forgotten first.
pub const DEFAULT_MAX_KEYS: u64 = 100_000;

#[derive(Clone, Copy)]
struct Entry {
    done: bool,
    /// Checked on every read (on the runtime's clock, so paused test time counts).
    expires_at: Instant,
    /// How long the cache keeps the entry, a backstop that frees expired keys' memory.
    kept_for: Duration,
}

impl Entry {
    fn new(done: bool, ttl: Duration) -> Self {
        Self {
            done,
            expires_at: Instant::now() + ttl,
            kept_for: ttl,
        }
    }

    fn live(&self) -> bool {
        self.expires_at > Instant::now()
    }
}

/// Frees an entry once its own time is up.
struct KeptFor;

impl moka::Expiry<String, Entry> for KeptFor {
    fn expire_after_create(
        &self,
        _: &String,
        entry: &Entry,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(entry.kept_for)
    }

    fn expire_after_update(
        &self,
        _: &String,
        entry: &Entry,
        _: std::time::Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.kept_for)
    }
}

/// A [`DedupStore`] in memory: fast, bounded, and forgotten when the process exits.
pub struct MemoryDedupStore {
    entries: Cache<String, Entry>,
}

impl Default for MemoryDedupStore {
    fn default() -> Self {
        Self::with_max_keys(DEFAULT_MAX_KEYS)
    }
}

impl MemoryDedupStore {
    /// An empty store keeping at most [`DEFAULT_MAX_KEYS`] keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store keeping at most `max_keys` keys (`EVENT_BUS_IDEMPOTENCY_MAX_KEYS`); past
    /// that, the least used keys are forgotten before their time.
    pub fn with_max_keys(max_keys: u64) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(max_keys)
                .expire_after(KeptFor)
                .build(),
        }
    }

    /// Number of keys currently remembered (claimed or done, not expired).
    pub fn len(&self) -> usize {
        self.entries.iter().filter(|(_, e)| e.live()).count()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl DedupStore for MemoryDedupStore {
    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, DedupError> {
        let mut claim = Claim::Acquired;
        self.entries
            .entry(key.to_owned())
            .and_compute_with(|current| match current.map(|e| e.into_value()) {
                Some(entry) if entry.live() => {
                    claim = if entry.done {
                        Claim::Done
                    } else {
                        Claim::InProgress
                    };
                    Op::Nop
                }
                _ => Op::Put(Entry::new(false, lease)),
            });
        Ok(claim)
    }

    async fn renew(&self, key: &str, lease: Duration) -> Result<(), DedupError> {
        self.entries
            .entry(key.to_owned())
            .and_compute_with(|current| match current.map(|e| e.into_value()) {
                Some(entry) if entry.live() && !entry.done => Op::Put(Entry::new(false, lease)),
                _ => Op::Nop,
            });
        Ok(())
    }

    async fn complete(&self, key: &str, ttl: Duration) -> Result<(), DedupError> {
        self.entries.insert(key.to_owned(), Entry::new(true, ttl));
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), DedupError> {
        self.entries.invalidate(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(30);
    const TTL: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn a_key_is_acquired_once_then_in_progress_then_done() {
        let store = MemoryDedupStore::new();
        assert_eq!(store.claim("k", LEASE).await.unwrap(), Claim::Acquired);
        assert_eq!(store.claim("k", LEASE).await.unwrap(), Claim::InProgress);
        store.complete("k", TTL).await.unwrap();
        assert_eq!(store.claim("k", LEASE).await.unwrap(), Claim::Done);
    }

    #[tokio::test]
    async fn a_released_key_can_be_claimed_again() {
        let store = MemoryDedupStore::new();
        store.claim("k", LEASE).await.unwrap();
        store.release("k").await.unwrap();
        assert_eq!(store.claim("k", LEASE).await.unwrap(), Claim::Acquired);
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewed_claim_outlives_its_first_lease_and_an_abandoned_one_expires() {
        let store = MemoryDedupStore::new();
        let lease = Duration::from_secs(3);
        assert_eq!(store.claim("k", lease).await.unwrap(), Claim::Acquired);
        tokio::time::advance(Duration::from_secs(2)).await;
        store.renew("k", lease).await.unwrap();
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(store.claim("k", lease).await.unwrap(), Claim::InProgress);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(store.claim("k", lease).await.unwrap(), Claim::Acquired);
        store.complete("k", TTL).await.unwrap();
        store.renew("k", lease).await.unwrap();
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(store.claim("k", lease).await.unwrap(), Claim::Done);
    }

    #[tokio::test]
    async fn past_its_cap_the_store_forgets_keys() {
        let store = MemoryDedupStore::with_max_keys(100);
        for n in 0..1_000 {
            store.complete(&format!("k-{n}"), TTL).await.unwrap();
        }
        store.entries.run_pending_tasks();
        assert!(store.len() <= 100, "{} keys kept", store.len());
        assert!(store.entries.entry_count() <= 100);
    }

    #[tokio::test(start_paused = true)]
    async fn keys_expire_after_their_ttl() {
        let store = MemoryDedupStore::new();
        store.claim("k", LEASE).await.unwrap();
        store.complete("k", Duration::from_secs(10)).await.unwrap();
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(store.claim("k", LEASE).await.unwrap(), Claim::Acquired);
        assert_eq!(store.len(), 1);
    }
}
