//! Errors of the event store.

use event_bus_core::error::BoxError;

use super::{ExpectedVersion, StreamId};

/// What can go wrong when reading or writing the event store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended to the stream first; nothing of this append was written.
    #[error(
        "concurrency conflict on stream {stream}: expected {expected}, but it is at version {actual}"
    )]
    Concurrency {
        /// The stream appended to.
        stream: StreamId,
        /// The version the caller expected.
        expected: ExpectedVersion,
        /// The version the stream is at.
        actual: u64,
    },
    /// An event's stored form could not be encoded or decoded.
    #[error("could not encode or decode a stored value: {0}")]
    Serde(#[from] serde_json::Error),
    /// An upcaster refused an old event.
    #[error(transparent)]
    Upcast(#[from] super::UpcastError),
    /// A setting of the store is not usable.
    #[error("invalid event store setting: {0}")]
    InvalidSetting(String),
    /// The store's backend reported an error.
    #[error("{backend} event store: {source}")]
    Backend {
        /// Backend name, such as `postgres`.
        backend: &'static str,
        /// The client library's error.
        source: BoxError,
    },
}

impl StoreError {
    /// Wraps a client library error of the named backend.
    pub fn backend(backend: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Backend {
            backend,
            source: source.into(),
        }
    }
}
