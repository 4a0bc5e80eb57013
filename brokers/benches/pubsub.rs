//! Placeholder, replaced by the Pub/Sub benchmark.
fn main() {}
