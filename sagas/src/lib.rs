//! Saga orchestration over the event bus. A saga is an ordered list of steps, each an action
//! with a compensation; an event starts it; transient failures are retried with backoff; on a
//! terminal failure or at its deadline the completed steps are compensated in reverse order.
//! State and a step log are persisted in a [`SagaRepository`] (in memory, or PostgreSQL with
//! feature `postgres`), so a restarted process resumes what a crash interrupted.
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use event_bus_core::{BusSettings, EventBus, EventEnvelope, InMemoryBroker};
//! use event_bus_sagas::{
//!     MemorySagaRepository, SagaDefinition, SagaOrchestrator, SagaSettings, SagaStatus, StepError,
//!     saga_id, step_fn,
//! };
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bus = Arc::new(EventBus::new(Arc::new(InMemoryBroker::new()), BusSettings::default()));
//! let orchestrator = SagaOrchestrator::new(
//!     bus.clone(),
//!     Arc::new(MemorySagaRepository::new()), // or PgSagaRepository::connect(url, schema) with feature `postgres`
//!     SagaSettings::from_env()?,             // ENABLE_SAGAS, SAGA_TIMEOUT_SECONDS, ...
//! );
//! orchestrator.register(
//!     SagaDefinition::new("order", "order.placed")
//!         .step("reserve_stock", step_fn(
//!             |ctx| async move {
//!                 let sku = ctx.data["trigger"]["sku"].as_str().unwrap_or_default().to_owned();
//!                 Ok(serde_json::json!({ "reserved": sku })) // kept in the saga data
//!             },
//!             |_ctx| async { Ok(()) }, // release the reservation
//!         ))
//!         .step("charge_card", step_fn(
//!             |_ctx| async { Err(StepError::permanent("card declined")) },
//!             |_ctx| async { Ok(()) },
//!         )),
//! )?;
//! orchestrator.subscribe().await?; // order.placed events now start sagas
//!
//! let placed = EventEnvelope::builder("order.placed", serde_json::json!({"sku": "A-1"}))
//!     .idempotency_key("order-1") // the saga id derives from it: a duplicate starts nothing
//!     .build();
//! bus.publish(&placed).await?;
//!
//! let id = saga_id("order", "order-1");
//! let saga = orchestrator.wait_finished(id, Duration::from_secs(10)).await?;
//! assert_eq!(saga.status, SagaStatus::Compensated); // reserve_stock was undone
//! assert_eq!(saga.failure.as_deref(), Some("step `charge_card` failed: permanent failure: card declined"));
//! orchestrator.shutdown().await;
//! # Ok(()) }
//! ```

pub mod command;
pub mod context;
pub mod definition;
pub mod error;
pub mod orchestrator;
pub mod repository;
pub mod settings;
pub mod shipped;
pub mod state;

pub use command::{CommandReply, CommandStep, command_step, participant};
pub use context::StepContext;
pub use definition::{DefinitionError, SagaDefinition, Step, step_fn};
pub use error::{RepositoryError, SagaError, StepError};
pub use orchestrator::{SagaOrchestrator, StartOutcome, saga_id};
#[cfg(feature = "postgres")]
pub use repository::PgSagaRepository;
pub use repository::{
    Clock, Created, Lease, ManualClock, MemorySagaRepository, SagaRepository, SystemClock,
};
pub use settings::{SagaSettings, SettingsError, VARIABLES};
pub use state::{SagaState, SagaStatus, StepOutcome, StepPhase, StepRecord};
