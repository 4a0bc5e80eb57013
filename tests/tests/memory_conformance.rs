//! The conformance suite on the in-memory backend.

use std::sync::Arc;

use async_trait::async_trait;
use event_bus_core::conformance::ConformanceTarget;
use event_bus_core::{Broker, Capabilities, InMemoryBroker};

/// One in-process broker per case; every `connect` is a new client of it.
struct Memory(InMemoryBroker);

#[async_trait]
impl ConformanceTarget for Memory {
    async fn connect(&self) -> Arc<dyn Broker> {
        Arc::new(self.0.connect())
    }

    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
}

event_bus_core::conformance_tests!(Memory(InMemoryBroker::new()));
