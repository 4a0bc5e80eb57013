//! Saga orchestration over the event bus. Not built yet: this crate holds the place in the
//! workspace for the orchestrator and the shipped sagas.
