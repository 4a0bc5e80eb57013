//! In-process dedup store with per-key expiry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{Claim, DedupError, DedupStore};

#[derive(Clone, Copy)]
struct Entry {
    done: bool,
    expires_at: Instant,
}

/// Claims between two sweeps of expired keys.
const SWEEP_EVERY: u32 = 1024;

/// A [`DedupStore`] in memory: fast, and forgotten when the process exits.
#[derive(Default)]
pub struct MemoryDedupStore {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_key: HashMap<String, Entry>,
    claims_since_sweep: u32,
}

impl MemoryDedupStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of keys currently remembered (claimed or done, not expired).
    pub fn len(&self) -> usize {
        let now = Instant::now();
        self.lock()
            .by_key
            .values()
            .filter(|e| e.expires_at > now)
            .count()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl DedupStore for MemoryDedupStore {
    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, DedupError> {
        let now = Instant::now();
        let mut entries = self.lock();
        entries.claims_since_sweep += 1;
        if entries.claims_since_sweep >= SWEEP_EVERY {
            entries.claims_since_sweep = 0;
            entries.by_key.retain(|_, e| e.expires_at > now);
        }
        match entries.by_key.get(key) {
            Some(e) if e.expires_at > now && e.done => Ok(Claim::Done),
            Some(e) if e.expires_at > now => Ok(Claim::InProgress),
            _ => {
                entries.by_key.insert(
                    key.to_owned(),
                    Entry {
                        done: false,
                        expires_at: now + lease,
                    },
                );
                Ok(Claim::Acquired)
            }
        }
    }

    async fn renew(&self, key: &str, lease: Duration) -> Result<(), DedupError> {
        let now = Instant::now();
        if let Some(entry) = self.lock().by_key.get_mut(key)
            && !entry.done
            && entry.expires_at > now
        {
            entry.expires_at = now + lease;
        }
        Ok(())
    }

    async fn complete(&self, key: &str, ttl: Duration) -> Result<(), DedupError> {
        let entry = Entry {
            done: true,
            expires_at: Instant::now() + ttl,
        };
        self.lock().by_key.insert(key.to_owned(), entry);
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), DedupError> {
        self.lock().by_key.remove(key);
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
