//! What the consume stack decided for one delivery; the worker only carries it out.

use std::time::Duration;

use crate::dead_letter::DeadLetterReason;
use crate::handler::HandlerError;

/// The outcome of one delivery, as a layer of the consume stack decided it.
#[derive(Debug)]
pub enum Disposition {
    /// The handler handled it: acknowledge.
    Handled,
    /// Not this subscription's to handle (another tenant's event, a redrive for another
    /// group): acknowledge without handling.
    Skipped,
    /// The handler failed; the retry layer turns this into [`Retry`](Self::Retry) or
    /// [`DeadLetter`](Self::DeadLetter). One that reaches the worker is retried.
    Failed(HandlerError),
    /// A failed attempt: the broker delivers it again after `after`.
    Retry {
        /// When to deliver it again.
        after: Duration,
    },
    /// Not handled now, and not a failure: the broker delivers it again after `after`,
    /// whatever its attempt.
    Defer {
        /// When to deliver it again.
        after: Duration,
    },
    /// Move it, untouched, to the dead-letter topic with the reason attached.
    DeadLetter {
        /// Why.
        reason: DeadLetterReason,
        /// The error, in words.
        error: String,
    },
}

impl Disposition {
    /// Dead-letters for `reason`, with `error` in words.
    pub fn dead_letter(reason: DeadLetterReason, error: impl ToString) -> Self {
        Self::DeadLetter {
            reason,
            error: error.to_string(),
        }
    }

    /// The name of the outcome, as the `event.handle` span records it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Handled => "handled",
            Self::Skipped => "skipped",
            Self::Failed(_) => "failed",
            Self::Retry { .. } => "retried",
            Self::Defer { .. } => "deferred",
            Self::DeadLetter { .. } => "dead-lettered",
        }
    }
}
