//! A [`Handler`] from an async closure.

use std::future::Future;

use async_trait::async_trait;

use super::{Handler, HandlerError};
use crate::envelope::EventEnvelope;

/// A handler calling an async closure with an owned copy of each event.
#[derive(Clone)]
pub struct HandlerFn<F>(F);

/// Wraps `f(event) -> Future<Output = Result<(), HandlerError>>` as a [`Handler`].
pub fn handler_fn<F, Fut>(f: F) -> HandlerFn<F>
where
    F: Fn(EventEnvelope) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    HandlerFn(f)
}

#[async_trait]
impl<F, Fut> Handler for HandlerFn<F>
where
    F: Fn(EventEnvelope) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        (self.0)(event.clone()).await
    }
}
