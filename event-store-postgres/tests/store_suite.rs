//! The event-store suite against the PostgreSQL server on 127.0.0.1:5432, each test in a
//! schema of its own.

mod common;

event_store::event_store_tests!(common::store);
