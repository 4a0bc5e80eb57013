//! Typed domain events and their conversion to and from envelopes.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{EnvelopeBuilder, EventEnvelope};

/// A typed domain event that knows its type name, schema version and aggregate.
pub trait DomainEvent: Serialize + DeserializeOwned {
    /// Event type name on the wire, such as `user.registered`.
    const EVENT_TYPE: &'static str;
    /// Version of this type's payload schema.
    const SCHEMA_VERSION: u32 = 1;
    /// Type of the aggregate the event belongs to, such as `user`.
    const AGGREGATE_TYPE: &'static str;

    /// Id of the aggregate this event belongs to.
    fn aggregate_id(&self) -> String;
}

/// Why an envelope could not be decoded into a typed event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The envelope carries another event type.
    #[error("unknown event type `{found}` (expected `{expected}`)")]
    TypeMismatch {
        /// The type the decoder handles.
        expected: &'static str,
        /// The type the envelope carries.
        found: String,
    },
    /// The payload was written with a newer schema than this decoder knows.
    #[error(
        "event `{event_type}` has schema version {found}, newer than the supported {supported}"
    )]
    UnsupportedSchemaVersion {
        /// The event type.
        event_type: String,
        /// The highest version the decoder reads.
        supported: u32,
        /// The version in the envelope.
        found: u32,
    },
    /// The payload does not match the event's schema.
    #[error("payload of `{event_type}` does not match its schema: {source}")]
    Payload {
        /// The event type.
        event_type: String,
        /// The JSON error.
        source: serde_json::Error,
    },
}

impl EventEnvelope {
    /// Starts an envelope for a typed event: type, schema version and aggregate come from it;
    /// set the aggregate version with [`EnvelopeBuilder::aggregate_version`].
    pub fn from_event<E: DomainEvent>(event: &E) -> Result<EnvelopeBuilder, serde_json::Error> {
        let payload = serde_json::to_value(event)?;
        Ok(Self::builder(E::EVENT_TYPE, payload)
            .aggregate(E::AGGREGATE_TYPE, event.aggregate_id(), 0)
            .schema_version(E::SCHEMA_VERSION))
    }

    /// Decodes the payload into a typed event, checking the type name and schema version.
    pub fn decode<E: DomainEvent>(&self) -> Result<E, DecodeError> {
        if self.event_type != E::EVENT_TYPE {
            return Err(DecodeError::TypeMismatch {
                expected: E::EVENT_TYPE,
                found: self.event_type.clone(),
            });
        }
        if self.schema_version > E::SCHEMA_VERSION {
            return Err(DecodeError::UnsupportedSchemaVersion {
                event_type: self.event_type.clone(),
                supported: E::SCHEMA_VERSION,
                found: self.schema_version,
            });
        }
        E::deserialize(&self.payload).map_err(|source| DecodeError::Payload {
            event_type: self.event_type.clone(),
            source,
        })
    }
}
