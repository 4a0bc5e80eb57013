//! [`CachedKeyStore`]: live keys kept for a while and forgotten subjects for good, in front of
//! a slower store.

use std::time::Duration;

use async_trait::async_trait;
use moka::sync::Cache;

use super::{KeyState, KeyStore, KeyStoreError};

/// How long a live key is cached by default.
const DEFAULT_TTL: Duration = Duration::from_secs(60);
const CAPACITY: u64 = 100_000;

/// Caches another store's answers: a live key for `ttl`, a forgotten subject until the process
/// ends (forgetting is final). A subject forgotten through another process is still readable
/// here until its cached key expires, at most `ttl` later.
pub struct CachedKeyStore<K> {
    inner: K,
    cache: Cache<String, KeyState>,
}

impl<K: KeyStore> CachedKeyStore<K> {
    /// A cache over `inner` keeping live keys for 60 seconds.
    pub fn new(inner: K) -> Self {
        Self::with_ttl(inner, DEFAULT_TTL)
    }

    /// A cache over `inner` keeping live keys for `ttl`.
    pub fn with_ttl(inner: K, ttl: Duration) -> Self {
        let cache = Cache::builder()
            .max_capacity(CAPACITY)
            .expire_after(Expiry { ttl })
            .build();
        Self { inner, cache }
    }

    /// The store behind the cache.
    pub fn inner(&self) -> &K {
        &self.inner
    }

    fn remember(&self, subject: &str, state: &KeyState) {
        if !matches!(state, KeyState::Absent) {
            self.cache.insert(subject.to_owned(), state.clone());
        }
    }
}

/// Live keys expire after the TTL; forgotten subjects never do.
struct Expiry {
    ttl: Duration,
}

impl moka::Expiry<String, KeyState> for Expiry {
    fn expire_after_create(
        &self,
        _subject: &String,
        state: &KeyState,
        _now: std::time::Instant,
    ) -> Option<Duration> {
        match state {
            KeyState::Live(_) => Some(self.ttl),
            _ => None,
        }
    }
}

#[async_trait]
impl<K: KeyStore> KeyStore for CachedKeyStore<K> {
    async fn key_or_create(&self, subject: &str) -> Result<KeyState, KeyStoreError> {
        if let Some(state) = self.cache.get(subject) {
            return Ok(state);
        }
        let state = self.inner.key_or_create(subject).await?;
        self.remember(subject, &state);
        Ok(state)
    }

    async fn key(&self, subject: &str) -> Result<KeyState, KeyStoreError> {
        if let Some(state) = self.cache.get(subject) {
            return Ok(state);
        }
        let state = self.inner.key(subject).await?;
        self.remember(subject, &state);
        Ok(state)
    }

    async fn forget(&self, subject: &str) -> Result<bool, KeyStoreError> {
        let held = self.inner.forget(subject).await?;
        self.cache.insert(subject.to_owned(), KeyState::Forgotten);
        Ok(held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::MemoryKeyStore;

    #[tokio::test]
    async fn forgetting_through_the_cache_is_seen_at_once_and_for_good() {
        let cache = CachedKeyStore::new(MemoryKeyStore::new());
        assert!(matches!(cache.key("u-1").await.unwrap(), KeyState::Absent));
        assert!(matches!(
            cache.key_or_create("u-1").await.unwrap(),
            KeyState::Live(_)
        ));
        assert!(matches!(cache.key("u-1").await.unwrap(), KeyState::Live(_)));
        assert!(cache.forget("u-1").await.unwrap());
        assert!(matches!(
            cache.key("u-1").await.unwrap(),
            KeyState::Forgotten
        ));
        assert!(matches!(
            cache.key_or_create("u-1").await.unwrap(),
            KeyState::Forgotten
        ));
        assert!(matches!(
            cache.inner().key("u-1").await.unwrap(),
            KeyState::Forgotten
        ));
    }
}
