//! Handling dead letters after the fact: read them from the dead-letter topic of any backend,
//! decide per dead letter to retry, discard or park it for a person, and count them.

mod dead_letter;
mod filter;
mod handler;
mod parked;
mod stats;

pub use dead_letter::{DeadLetter, REDRIVES_HEADER};
pub use filter::DeadLetterFilter;
pub use handler::{Action, DeadLetterError, DeadLetterHandler, DeadLetterPolicy};
pub use parked::{MemoryParkedStore, ParkedStore};
pub use stats::DeadLetterStats;
