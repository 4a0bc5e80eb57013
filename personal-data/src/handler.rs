//! [`OpenLayer`]: the handle side. The handler sees each event with its personal fields
//! decrypted, or replaced by the erased marker once the subject is forgotten.

use async_trait::async_trait;
use event_bus_core::envelope::EventEnvelope;
use event_bus_core::handler::{Handler, HandlerError};
use tower_layer::Layer;

use crate::sealer::{SealError, Sealer};

/// Wraps a handler so it gets events opened by a [`Sealer`].
#[derive(Clone)]
pub struct OpenLayer {
    sealer: Sealer,
}

impl OpenLayer {
    /// Opens with `sealer`.
    pub fn new(sealer: Sealer) -> Self {
        Self { sealer }
    }
}

impl<H> Layer<H> for OpenLayer {
    type Service = Opening<H>;

    fn layer(&self, inner: H) -> Self::Service {
        Opening {
            inner,
            sealer: self.sealer.clone(),
        }
    }
}

/// A handler that opens each event before its inner handler sees it. A key store failure is
/// retried; a field that does not decrypt under a live key is a permanent failure, so the
/// event is dead-lettered (still sealed).
pub struct Opening<H> {
    inner: H,
    sealer: Sealer,
}

#[async_trait]
impl<H: Handler> Handler for Opening<H> {
    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        let mut opened = event.clone();
        match self.sealer.open(&mut opened).await {
            Ok(_) => self.inner.handle(&opened).await,
            Err(error @ SealError::Keys(_)) => Err(HandlerError::retryable(error)),
            Err(error) => Err(HandlerError::permanent(error)),
        }
    }
}
