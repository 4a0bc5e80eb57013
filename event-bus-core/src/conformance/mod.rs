//! The conformance suite: the behaviour every backend must show against its real server.
//!
//! A backend's test file implements [`ConformanceTarget`] and expands
//! [`conformance_tests!`](crate::conformance_tests), which makes one `#[tokio::test]` per case.
//! Cases a backend's [`Capabilities`] rule out report themselves skipped and pass.

mod cloudevents;
mod delivery;
mod failures;
mod fixture;
mod lifecycle;
mod observability;
mod restart;
mod tenancy;

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::BoxError;
use crate::transport::{Broker, Capabilities};

pub use cloudevents::*;
pub use delivery::*;
pub use failures::*;
pub use fixture::{Fixture, TIMEOUT};
pub use lifecycle::*;
pub use observability::*;
pub use restart::*;
pub use tenancy::*;

/// A server under test.
#[async_trait]
pub trait ConformanceTarget: Send + Sync {
    /// A new client of the server, as another process would open.
    async fn connect(&self) -> Arc<dyn Broker>;

    /// What the backend declares it guarantees.
    fn capabilities(&self) -> Capabilities;

    /// Stops the server and starts it again with its data; called only when the capabilities
    /// say `can_restart_server`.
    async fn restart_server(&self) -> Result<(), BoxError> {
        Err(Box::new(RestartUnsupported))
    }
}

/// The target cannot restart its server.
#[derive(Debug, thiserror::Error)]
#[error("this conformance target cannot restart its server")]
pub struct RestartUnsupported;

/// Makes one `#[tokio::test]` per conformance case; the argument is an expression (it may
/// `.await`) that yields a [`ConformanceTarget`].
#[macro_export]
macro_rules! conformance_tests {
    ($target:expr) => {
        $crate::conformance_tests!(@cases $target;
            publish_then_subscribe_keeps_payload_and_headers,
            concurrent_publishers_and_subscribers_lose_nothing,
            topics_stay_isolated,
            every_consumer_group_gets_every_event,
            a_new_group_receives_earlier_events,
            per_key_order_is_kept,
            a_tenant_never_handles_another_tenants_events,
            a_tenant_named_only_in_the_event_is_routed,
            any_cloudevent_in_either_mode_is_handled,
            trace_context_headers_reach_the_consumer,
            nack_redelivers_and_loses_nothing,
            a_closed_group_resumes_where_it_left_off,
            concurrent_subscribe_and_close_is_safe,
            an_unsettled_delivery_is_redelivered,
            the_publisher_flushes_on_close,
            graceful_shutdown_loses_nothing_in_flight,
            exhausted_retries_go_to_the_dead_letter_topic,
            bad_input_is_dead_lettered_at_once,
            a_panicking_handler_is_a_counted_failure,
            idempotency_key_duplicates_are_handled_once,
            no_event_is_lost_across_a_server_restart,
        );
    };
    (@cases $target:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let target = $target;
                $crate::conformance::$case(&target).await;
            }
        )*
    };
}
