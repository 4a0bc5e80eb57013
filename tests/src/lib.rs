//! Integration tests of the event bus; see `tests/`.
