//! In-process stand-ins for the services the shipped sagas call, for examples and tests: each
//! operation records a fact, and can be scripted to fail transiently, permanently, or hang.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::error::StepError;

/// How a scripted operation misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Fails transiently this many times, then works.
    Transient(u32),
    /// Always fails permanently.
    Permanent,
    /// Never returns.
    Hang,
}

/// A service call failed because a fault was scripted.
#[derive(Debug, thiserror::Error)]
#[error("{operation}: scripted {kind} failure")]
pub struct ScriptedFailure {
    /// The operation.
    pub operation: String,
    /// `transient` or `permanent`.
    pub kind: &'static str,
}

/// Facts the example services hold (such as `profile:u-1`), the calls they got, and scripted
/// faults; shared by every shipped saga's example implementation.
#[derive(Default)]
pub struct ExampleServices {
    inner: Mutex<Inner>,
    print_calls: bool,
}

#[derive(Default)]
struct Inner {
    facts: BTreeSet<String>,
    calls: Vec<String>,
    faults: HashMap<String, Fault>,
}

impl ExampleServices {
    /// Services with no facts and no faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Services that also print `call {operation}` to stdout for every call.
    pub fn printing() -> Self {
        Self {
            print_calls: true,
            ..Self::default()
        }
    }

    /// Scripts `operation` (such as `profile.create`) to misbehave.
    pub fn fail(&self, operation: &str, fault: Fault) {
        self.lock().faults.insert(operation.to_owned(), fault);
    }

    /// Removes the scripted fault of `operation`.
    pub fn heal(&self, operation: &str) {
        self.lock().faults.remove(operation);
    }

    /// Adds a fact, as if a service held it before any saga ran.
    pub fn hold(&self, fact: &str) {
        self.lock().facts.insert(fact.to_owned());
    }

    /// The facts held now.
    pub fn facts(&self) -> BTreeSet<String> {
        self.lock().facts.clone()
    }

    /// Whether a fact is held.
    pub fn has(&self, fact: &str) -> bool {
        self.lock().facts.contains(fact)
    }

    /// Every call, in order.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// How many times `operation` was called.
    pub fn call_count(&self, operation: &str) -> usize {
        self.lock().calls.iter().filter(|c| *c == operation).count()
    }

    /// Records the call of `operation`, applies its scripted fault, else adds (or with
    /// `add == false` removes) `fact`. Idempotent: adding a held fact changes nothing.
    pub async fn perform(&self, operation: &str, fact: &str, add: bool) -> Result<(), StepError> {
        let fault = {
            let mut inner = self.lock();
            inner.calls.push(operation.to_owned());
            if self.print_calls {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "call {operation}");
                let _ = out.flush();
            }
            let fault = inner.faults.get(operation).copied();
            if let Some(Fault::Transient(left)) = fault {
                if left <= 1 {
                    inner.faults.remove(operation);
                } else {
                    inner
                        .faults
                        .insert(operation.to_owned(), Fault::Transient(left - 1));
                }
            }
            if fault.is_none() {
                if add {
                    inner.facts.insert(fact.to_owned());
                } else {
                    inner.facts.remove(fact);
                }
            }
            fault
        };
        let failure = |kind| ScriptedFailure {
            operation: operation.to_owned(),
            kind,
        };
        match fault {
            None => Ok(()),
            Some(Fault::Transient(_)) => Err(StepError::transient(failure("transient"))),
            Some(Fault::Permanent) => Err(StepError::permanent(failure("permanent"))),
            Some(Fault::Hang) => futures::future::pending().await,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
