//! In-process dedup store: per-key expiry and a cap on how many keys it keeps, on a sharded
//! concurrent cache (`quick_cache`), so claims of different keys seldom wait for one lock.

use std::time::Duration;

use async_trait::async_trait;
use quick_cache::sync::{Cache, EntryAction, EntryResult};
use tokio::time::Instant;

use super::{Claim, DedupError, DedupStore};

/// Keys kept at most unless told otherwise; past it the least used are forgotten first.
pub const DEFAULT_MAX_KEYS: u64 = 100_000;

#[derive(Clone, Copy)]
struct Entry {
    done: bool,
    /// Checked on every read (on the runtime's clock, so paused test time counts).
    expires_at: Instant,
}

impl Entry {
    fn new(done: bool, ttl: Duration) -> Self {
        Self {
            done,
            expires_at: Instant::now() + ttl,
        }
    }

    fn live(&self) -> bool {
        self.expires_at > Instant::now()
    }
}

/// A [`DedupStore`] in memory: fast, bounded, and forgotten when the process exits. An
/// expired key counts as absent at once; its memory is reused when the cap is reached.
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
        let capacity = usize::try_from(max_keys).unwrap_or(usize::MAX).max(1);
        Self {
            entries: Cache::new(capacity),
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
        let held = self.entries.entry(key, None, |_, entry| {
            if !entry.live() {
                EntryAction::ReplaceWithGuard
            } else if entry.done {
                EntryAction::Retain(Claim::Done)
            } else {
                EntryAction::Retain(Claim::InProgress)
            }
        });
        Ok(match held {
            EntryResult::Retained(claim) => claim,
            EntryResult::Vacant(guard) | EntryResult::Replaced(guard, _) => {
                let _ = guard.insert(Entry::new(false, lease));
                Claim::Acquired
            }
            // Neither is asked for: no callback removes, and claims wait without a timeout.
            EntryResult::Removed(..) | EntryResult::Timeout => Claim::InProgress,
        })
    }

    async fn renew(&self, key: &str, lease: Duration) -> Result<(), DedupError> {
        // A key that is gone stays gone: the guard of a vacant one is dropped unused.
        let _ = self.entries.entry(key, None, |_, entry| {
            if entry.live() && !entry.done {
                *entry = Entry::new(false, lease);
            }
            EntryAction::Retain(())
        });
        Ok(())
    }

    async fn complete(&self, key: &str, ttl: Duration) -> Result<(), DedupError> {
        self.entries.insert(key.to_owned(), Entry::new(true, ttl));
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), DedupError> {
        self.entries.remove(key);
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
        assert!(store.len() <= 100, "{} keys kept", store.len());
        assert!(store.entries.len() <= 100);
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
