//! Where subjects' data keys live: the [`KeyStore`] contract, kept in memory
//! ([`MemoryKeyStore`]) or in PostgreSQL wrapped by a master key (`PgKeyStore`, feature
//! `postgres`), with a cache in front ([`CachedKeyStore`]).

mod cache;
#[cfg(feature = "postgres")]
mod master;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;

use async_trait::async_trait;
use event_bus_core::error::BoxError;

use crate::key::DataKey;

pub use cache::CachedKeyStore;
#[cfg(feature = "postgres")]
pub use master::{MasterKey, MasterKeyError, MasterKeys};
pub use memory::MemoryKeyStore;
#[cfg(feature = "postgres")]
pub use postgres::PgKeyStore;

/// What a key store holds for one subject.
#[derive(Clone, Debug)]
pub enum KeyState {
    /// The subject's key.
    Live(DataKey),
    /// The subject was forgotten: the key is gone for good and no new one is ever made.
    Forgotten,
    /// No key was ever made for the subject.
    Absent,
}

/// The key store failed; nothing was decided about the subject.
#[derive(Debug, thiserror::Error)]
#[error("{backend} key store: {source}")]
pub struct KeyStoreError {
    /// Name of the store's backend.
    pub backend: &'static str,
    /// What went wrong.
    pub source: BoxError,
}

impl KeyStoreError {
    /// Wraps an error of the named backend.
    pub fn backend(backend: &'static str, source: impl Into<BoxError>) -> Self {
        Self {
            backend,
            source: source.into(),
        }
    }
}

/// Keeps one data key per data subject, and forgets it on request.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// The subject's key, made on first use; [`KeyState::Forgotten`] once forgotten (never
    /// [`KeyState::Absent`]).
    async fn key_or_create(&self, subject: &str) -> Result<KeyState, KeyStoreError>;

    /// The subject's key as it is, without making one.
    async fn key(&self, subject: &str) -> Result<KeyState, KeyStoreError>;

    /// Deletes the subject's key for good and remembers that it did, so no new key is made
    /// for the subject; returns whether a key was held. Cannot be undone.
    async fn forget(&self, subject: &str) -> Result<bool, KeyStoreError>;
}

#[async_trait]
impl<K: KeyStore + ?Sized> KeyStore for std::sync::Arc<K> {
    async fn key_or_create(&self, subject: &str) -> Result<KeyState, KeyStoreError> {
        (**self).key_or_create(subject).await
    }

    async fn key(&self, subject: &str) -> Result<KeyState, KeyStoreError> {
        (**self).key(subject).await
    }

    async fn forget(&self, subject: &str) -> Result<bool, KeyStoreError> {
        (**self).forget(subject).await
    }
}
