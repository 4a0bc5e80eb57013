//! Core of the event bus: the event envelope, the publish/subscribe contract a backend
//! implements, and the layers that work on every backend once: retry with backoff,
//! dead-lettering, idempotency, panic catching and tracing. Also the in-memory bus.
//!
//! ```
//! use std::time::Duration;
//! use event_bus_core::{BusSettings, EventBus, EventEnvelope, InMemoryBroker, Recorder};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bus = EventBus::new(std::sync::Arc::new(InMemoryBroker::new()), BusSettings::default());
//! let recorder = Recorder::new();
//! bus.subscribe(bus.subscription("user.registered", "welcome-email"), recorder.clone()).await?;
//!
//! let event = EventEnvelope::builder("user.registered", serde_json::json!({"email": "ada@example.com"}))
//!     .source("user-service")
//!     .aggregate("user", "user-1", 1)
//!     .build();
//! bus.publish(&event).await?;
//!
//! assert_eq!(recorder.wait_for(1, Duration::from_secs(5)).await?[0].id, event.id);
//! bus.shutdown().await?;
//! # Ok(()) }
//! ```

pub mod bus;
pub mod config;
pub mod consumer;
pub mod dead_letter;
pub mod envelope;
pub mod error;
pub mod handler;
pub mod idempotency;
pub mod kit;
pub mod memory;
pub mod message;
pub mod redact;
pub mod retry;
pub mod telemetry;
pub mod testing;
pub mod topics;
pub mod transport;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use bus::EventBus;
pub use config::{BusSettings, ConfigError, SettingsSource};
pub use consumer::{StatsSnapshot, SubscriptionHandle, SubscriptionStats};
pub use dead_letter::DeadLetterReason;
pub use envelope::{DecodeError, DomainEvent, EventEnvelope};
pub use error::{AccessKind, BoxError, BusError};
pub use handler::{CircuitBreakerLayer, Handler, HandlerError, handler_fn, typed};
pub use idempotency::{DedupStore, MemoryDedupStore};
pub use memory::InMemoryBroker;
pub use message::Message;
pub use retry::RetryPolicy;
pub use testing::Recorder;
pub use topics::TopicNames;
pub use transport::{
    Broker, Capabilities, Delivery, Nack, Publisher, Subscriber, Subscription, SubscriptionConfig,
    TopologyItem, TopologyMode,
};
