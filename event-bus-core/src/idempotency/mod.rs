//! Idempotent handling: duplicates of an already handled idempotency key are skipped.

mod dedup_store;
mod layer;
mod memory_dedup_store;

pub use dedup_store::{Claim, DedupError, DedupStore};
pub use layer::{IdempotencyLayer, Idempotent};
pub use memory_dedup_store::{DEFAULT_MAX_KEYS, MemoryDedupStore};
