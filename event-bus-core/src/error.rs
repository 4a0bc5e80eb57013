//! Errors of the transport contract.

/// A boxed error from a backend's client library.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What can go wrong when talking to a backend.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The publisher or subscriber was closed.
    #[error("the {0} is closed")]
    Closed(&'static str),
    /// The message is larger than the backend accepts; nothing was sent.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// Size of the message.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A backend's batch publish returned fewer results than it was given messages.
    #[error("{backend} backend returned no result for a batch entry")]
    MissingBatchResult {
        /// Backend name.
        backend: &'static str,
    },
    /// The envelope could not be encoded.
    #[error("could not encode the event: {0}")]
    Encode(#[from] serde_json::Error),
    /// The backend's client reported an error.
    #[error("{backend} backend: {source}")]
    Backend {
        /// Backend name, as `Broker::name` gives it.
        backend: &'static str,
        /// The client library's error.
        source: BoxError,
    },
}

impl BusError {
    /// Wraps a client library error of the named backend.
    pub fn backend(backend: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Backend {
            backend,
            source: source.into(),
        }
    }
}
