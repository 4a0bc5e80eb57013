//! The transport message: what a backend moves, independent of the envelope inside.

use std::collections::BTreeMap;

use bytes::Bytes;

/// Bytes plus string headers and an optional ordering key, as a backend carries them.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Message {
    /// Ordering and partitioning key; messages with one key are delivered in order.
    pub key: Option<String>,
    /// Transport headers, carried as the broker carries metadata (headers or attributes).
    pub headers: BTreeMap<String, String>,
    /// The encoded payload.
    pub payload: Bytes,
}

impl Message {
    /// A message with this payload and no key or headers.
    pub fn new(payload: impl Into<Bytes>) -> Self {
        Self {
            key: None,
            headers: BTreeMap::new(),
            payload: payload.into(),
        }
    }

    /// Sets the ordering key.
    #[must_use]
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Size counted against the broker's message limit: payload, key and headers.
    pub fn size(&self) -> usize {
        let headers: usize = self.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        self.payload.len() + self.key.as_ref().map_or(0, String::len) + headers
    }
}
