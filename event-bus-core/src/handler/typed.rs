//! A [`Handler`] for one typed domain event; other types and bad payloads fail permanently.

use std::future::Future;
use std::marker::PhantomData;

use async_trait::async_trait;

use super::{Handler, HandlerError};
use crate::envelope::{DomainEvent, EventEnvelope};

/// Decodes each envelope into `E` and calls the closure with it and the envelope.
pub struct Typed<E, F> {
    f: F,
    event: PhantomData<fn() -> E>,
}

/// Wraps `f(event, envelope)` as a [`Handler`] of `E`. An envelope of another type, a newer
/// schema or a payload that does not decode is a permanent failure, so it is dead-lettered.
pub fn typed<E, F, Fut>(f: F) -> Typed<E, F>
where
    E: DomainEvent + Send + 'static,
    F: Fn(E, EventEnvelope) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    Typed {
        f,
        event: PhantomData,
    }
}

#[async_trait]
impl<E, F, Fut> Handler for Typed<E, F>
where
    E: DomainEvent + Send + 'static,
    F: Fn(E, EventEnvelope) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    async fn handle(&self, envelope: &EventEnvelope) -> Result<(), HandlerError> {
        let event = envelope.decode::<E>().map_err(HandlerError::permanent)?;
        (self.f)(event, envelope.clone()).await
    }
}
