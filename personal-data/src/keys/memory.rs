//! [`MemoryKeyStore`]: keys in the process, for tests and demos.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use super::{KeyState, KeyStore, KeyStoreError};
use crate::key::DataKey;

/// Keys in a map in memory; `None` marks a forgotten subject. Lost when the process ends.
#[derive(Default)]
pub struct MemoryKeyStore {
    keys: Mutex<HashMap<String, Option<DataKey>>>,
}

impl MemoryKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(entry: Option<&Option<DataKey>>) -> KeyState {
        match entry {
            Some(Some(key)) => KeyState::Live(key.clone()),
            Some(None) => KeyState::Forgotten,
            None => KeyState::Absent,
        }
    }
}

#[async_trait]
impl KeyStore for MemoryKeyStore {
    async fn key_or_create(&self, subject: &str) -> Result<KeyState, KeyStoreError> {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = keys
            .entry(subject.to_owned())
            .or_insert_with(|| Some(DataKey::generate().0));
        Ok(Self::state(Some(entry)))
    }

    async fn key(&self, subject: &str) -> Result<KeyState, KeyStoreError> {
        let keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(Self::state(keys.get(subject)))
    }

    async fn forget(&self, subject: &str) -> Result<bool, KeyStoreError> {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(matches!(
            keys.insert(subject.to_owned(), None),
            Some(Some(_))
        ))
    }
}
