//! The "closed" state of a publisher or subscriber, shared by every backend.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::BusError;

/// Set once by `close`; afterwards every publish is refused with [`BusError::Closed`].
#[derive(Debug, Default)]
pub struct ClosedFlag(AtomicBool);

impl ClosedFlag {
    /// `Ok` while open; [`BusError::Closed`] naming `what` once closed.
    pub fn ensure_open(&self, what: &'static str) -> Result<(), BusError> {
        if self.is_closed() {
            Err(BusError::Closed(what))
        } else {
            Ok(())
        }
    }

    /// Once closed, a [`BusError::Closed`] for each of `count` messages of a batch.
    pub fn refuse_batch(
        &self,
        what: &'static str,
        count: usize,
    ) -> Option<Vec<Result<(), BusError>>> {
        self.is_closed()
            .then(|| (0..count).map(|_| Err(BusError::Closed(what))).collect())
    }

    /// Marks it closed; `true` for the call that closed it, `false` when it already was.
    pub fn close(&self) -> bool {
        !self.0.swap(true, Ordering::AcqRel)
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_work_after_the_first_close() {
        let flag = ClosedFlag::default();
        assert!(flag.ensure_open("publisher").is_ok());
        assert!(flag.refuse_batch("publisher", 2).is_none());
        assert!(flag.close());
        assert!(!flag.close());
        assert!(matches!(
            flag.ensure_open("publisher"),
            Err(BusError::Closed("publisher"))
        ));
        let refused = flag.refuse_batch("publisher", 2).expect("closed");
        assert_eq!(refused.len(), 2);
        assert!(
            refused
                .iter()
                .all(|r| matches!(r, Err(BusError::Closed("publisher"))))
        );
    }
}
