//! Dead letters, in one place: why an event is dead-lettered and the headers it then carries
//! (written by the consumer path of every backend), and handling dead letters after the fact:
//! read them from the dead-letter topic, decide per dead letter to retry, discard or park it
//! for a person, and count them.

mod filter;
mod handler;
mod letter;
mod parked;
mod reason;
mod stats;

pub use filter::DeadLetterFilter;
pub use handler::{Action, DeadLetterError, DeadLetterHandler, DeadLetterPolicy};
pub use letter::{DeadLetter, REDRIVE_SUBSCRIPTION_HEADER, REDRIVES_HEADER};
pub use parked::{MemoryParkedStore, ParkedStore, ParkedStoreError};
pub use reason::{DeadLetterReason, FailureReport, headers};
pub use stats::DeadLetterStats;
