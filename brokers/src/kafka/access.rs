//! Refusals: the broker refusing the bus's credentials or one of its actions, and the bus
//! refusing the broker's certificate. Librdkafka reports them as error events and keeps
//! retrying by itself, so clients watch for them and the bus stops at the first.

use std::sync::{Mutex, PoisonError};

use event_bus_core::{AccessKind, BusError};
use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::Notify;

/// Which refusal a librdkafka error code is, if any; `reason` is librdkafka's text, which
/// tells a certificate failure from other TLS errors.
pub(super) fn access_kind(code: RDKafkaErrorCode, reason: &str) -> Option<AccessKind> {
    match code {
        RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed => {
            Some(AccessKind::Credentials)
        }
        RDKafkaErrorCode::TopicAuthorizationFailed
        | RDKafkaErrorCode::GroupAuthorizationFailed
        | RDKafkaErrorCode::ClusterAuthorizationFailed
        | RDKafkaErrorCode::TransactionalIdAuthorizationFailed
        | RDKafkaErrorCode::DelegationTokenAuthorizationFailed => Some(AccessKind::Permission),
        RDKafkaErrorCode::SSL if reason.to_ascii_lowercase().contains("certificate") => {
            Some(AccessKind::Certificate)
        }
        _ => None,
    }
}

/// The first refusal any client of one broker reported.
#[derive(Default)]
pub(super) struct AccessWatch {
    refused: Mutex<Option<(AccessKind, String)>>,
    changed: Notify,
}

impl AccessWatch {
    /// Keeps `error` if it is a refusal (and the first); true when it is one.
    fn record(&self, error: &KafkaError, reason: &str) -> bool {
        let Some(kind) = error
            .rdkafka_error_code()
            .and_then(|code| access_kind(code, reason))
        else {
            return false;
        };
        let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        if refused.is_none() {
            tracing::error!(%kind, reason, "kafka: refused");
            *refused = Some((kind, reason.to_owned()));
            self.changed.notify_waiters();
        }
        true
    }

    /// The refusal reported so far, as the bus's error.
    pub(super) fn refused(&self) -> Option<BusError> {
        self.refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|(kind, detail)| BusError::access("kafka", *kind, detail.clone()))
    }

    /// Waits for the first refusal.
    pub(super) async fn wait(&self) -> BusError {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(error) = self.refused() {
                return error;
            }
            changed.await;
        }
    }
}

/// The context of the producer and the admin client: reports refusals to the watch, logs the
/// other errors as librdkafka's default does.
pub(super) struct WatchedContext {
    pub(super) watch: std::sync::Arc<AccessWatch>,
}

impl ClientContext for WatchedContext {
    fn error(&self, error: KafkaError, reason: &str) {
        report(&self.watch, &error, reason);
    }
}

/// Reports `error` to `watch` when it is a refusal; for consumer contexts.
pub(super) fn report(watch: &AccessWatch, error: &KafkaError, reason: &str) {
    if !watch.record(error, reason) {
        tracing::error!(%error, reason, "librdkafka");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authentication_authorization_and_certificate_codes_are_refusals() {
        assert_eq!(
            access_kind(
                RDKafkaErrorCode::Authentication,
                "SASL authentication error"
            ),
            Some(AccessKind::Credentials)
        );
        assert_eq!(
            access_kind(RDKafkaErrorCode::GroupAuthorizationFailed, ""),
            Some(AccessKind::Permission)
        );
        assert_eq!(
            access_kind(
                RDKafkaErrorCode::SSL,
                "SSL handshake failed: certificate verify failed"
            ),
            Some(AccessKind::Certificate)
        );
        assert_eq!(
            access_kind(RDKafkaErrorCode::SSL, "SSL handshake failed: wrong version"),
            None
        );
        assert_eq!(
            access_kind(RDKafkaErrorCode::BrokerTransportFailure, ""),
            None
        );
    }
}
