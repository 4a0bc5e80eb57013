//! The server's permission refusals: NATS answers a publish the user may not make with an
//! asynchronous `-ERR 'Permissions Violation …'` and no reply, so a JetStream request that
//! then times out is told apart from a slow server by looking here.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

/// Refusals kept, newest last.
const KEPT: usize = 32;

/// The subjects the server most recently refused this connection to publish to.
#[derive(Clone, Default)]
pub(super) struct Violations(Arc<Mutex<VecDeque<String>>>);

impl Violations {
    /// Takes in a server error; keeps it when it is a publish permission violation.
    pub(super) fn record(&self, error: &async_nats::ServerError) {
        let async_nats::ServerError::Other(text) = error else {
            return;
        };
        let Some(subject) = refused_subject(text) else {
            return;
        };
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() == KEPT {
            kept.pop_front();
        }
        kept.push_back(subject);
    }

    /// The refused subject that starts with `prefix`, if the server refused one.
    pub(super) fn refused(&self, prefix: &str) -> Option<String> {
        let kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        kept.iter().rev().find(|s| s.starts_with(prefix)).cloned()
    }
}

/// The subject of `Permissions Violation for Publish to "SUBJECT"` (any case, quotes optional).
fn refused_subject(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let at = lower.find("permissions violation for publish to")?;
    let rest = text[at + "permissions violation for publish to".len()..].trim();
    let subject = rest
        .trim_start_matches(['"', '\''])
        .split(['"', '\'', ' '])
        .next()?;
    (!subject.is_empty()).then(|| subject.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_refusal_keeps_its_subject() {
        let violations = Violations::default();
        violations.record(&async_nats::ServerError::Other(
            "permissions violation for publish to \"$JS.API.STREAM.CREATE.orders\"".to_owned(),
        ));
        violations.record(&async_nats::ServerError::Other("slow consumer".to_owned()));
        assert_eq!(
            violations.refused("$JS.API.STREAM.CREATE."),
            Some("$JS.API.STREAM.CREATE.orders".to_owned())
        );
        assert_eq!(violations.refused("$JS.API.CONSUMER."), None);
    }
}
