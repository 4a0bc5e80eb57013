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
    /// `EVENT_BUS_TOPOLOGY=existing` and a piece of topology the bus needs does not exist.
    #[error(
        "{backend}: {what} does not exist, and EVENT_BUS_TOPOLOGY=existing does not create it; create it with `eventbus setup` as an identity allowed to"
    )]
    MissingTopology {
        /// Backend name.
        backend: &'static str,
        /// What is missing, with its name (`queue \`orders.billing\``).
        what: String,
    },
    /// `EVENT_BUS_TOPOLOGY=existing` and a subscription asks for an instance-scoped group,
    /// which only its owner can create and delete.
    #[error(
        "{backend}: the instance-scoped group `{group}` must be created and deleted by its owner, which EVENT_BUS_TOPOLOGY=existing forbids; run this component with EVENT_BUS_TOPOLOGY=create"
    )]
    InstanceScopedGroup {
        /// Backend name.
        backend: &'static str,
        /// The group asked for.
        group: String,
    },
    /// The broker refused the bus's identity or one of its actions, or the bus refused the
    /// broker's certificate. Retrying does not help; the settings must change.
    #[error("{backend}: {kind}: {detail}")]
    Access {
        /// Backend name.
        backend: &'static str,
        /// Which kind of refusal.
        kind: AccessKind,
        /// The broker's or the client's words, without any secret.
        detail: String,
    },
    /// The backend's client reported an error.
    #[error("{backend} backend: {source}")]
    Backend {
        /// Backend name, as `Broker::name` gives it.
        backend: &'static str,
        /// The client library's error.
        source: BoxError,
    },
}

/// Why the broker and the bus did not accept each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccessKind {
    /// Wrong user name or password (or token), or an unknown user.
    #[error("authentication failed (check the user name and password)")]
    Credentials,
    /// The identity may not do what the bus asked.
    #[error("permission denied")]
    Permission,
    /// The server's TLS certificate is not trusted (or names another host).
    #[error("the server's TLS certificate is not trusted")]
    Certificate,
}

impl BusError {
    /// An [`Access`](Self::Access) error of the named backend.
    pub fn access(backend: &'static str, kind: AccessKind, detail: impl Into<String>) -> Self {
        Self::Access {
            backend,
            kind,
            detail: detail.into(),
        }
    }

    /// A [`MissingTopology`](Self::MissingTopology) error: `what` is missing.
    pub fn missing(backend: &'static str, what: impl std::fmt::Display) -> Self {
        Self::MissingTopology {
            backend,
            what: what.to_string(),
        }
    }

    /// True for errors that retrying with the same settings cannot fix: refused access,
    /// missing topology.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::Access { .. } | Self::MissingTopology { .. } | Self::InstanceScopedGroup { .. }
        )
    }

    /// Wraps a client library error of the named backend.
    pub fn backend(backend: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Backend {
            backend,
            source: source.into(),
        }
    }
}
