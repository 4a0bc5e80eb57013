//! The event envelope: what travels on every backend, a CloudEvents 1.0 event.

mod attributes;
mod builder;
mod data;
mod domain_event;
mod replay_marker;
mod structured;
mod wire;

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};

pub use attributes::EnvelopeError;
pub use builder::{DEFAULT_SOURCE, EnvelopeBuilder};
pub use domain_event::{DecodeError, DomainEvent};
pub use replay_marker::{REPLAYED_HEADER, SkipReplays, skip_replays};
pub use wire::{ContentMode, WireError, content_mode, header_tenant, headers as wire_headers};

/// A domain event with its metadata: a CloudEvents 1.0 event.
///
/// Field names on the wire are CloudEvents attributes where one exists (`id`, `type`, `source`,
/// `subject` for the aggregate id, `time`, `datacontenttype`, `data` or `data_base64`) and
/// lower-case CloudEvents extension attributes otherwise (`aggregatetype`, `aggregateversion`,
/// `schemaversion`, `correlationid`, `causationid`, `tenantid`, `idempotencykey`, `headers`).
/// Any other attribute is kept in [`extensions`](Self::extensions). Only `specversion`, `id`,
/// `source` and `type` are required when reading; the README lists the defaults of the rest.
#[derive(Clone, Debug, PartialEq)]
pub struct EventEnvelope {
    /// Unique id of this event among the events of its `source` (a UUID v7 when the bus makes it).
    pub id: String,
    /// Event type name, such as `user.registered`.
    pub event_type: String,
    /// The service or component that produced the event.
    pub source: String,
    /// Id of the aggregate the event belongs to (`subject`); also the ordering key.
    pub aggregate_id: String,
    /// Type of the aggregate, such as `user`.
    pub aggregate_type: String,
    /// Version of the aggregate after this event.
    pub aggregate_version: u64,
    /// Version of the payload schema of this event type.
    pub schema_version: u32,
    /// When the event happened.
    pub timestamp: DateTime<Utc>,
    /// Id shared by every event of one business transaction.
    pub correlation_id: String,
    /// Id of the event or command that caused this one.
    pub causation_id: Option<String>,
    /// Tenant the event belongs to.
    pub tenant_id: Option<String>,
    /// Key under which handlers deduplicate deliveries of this event.
    pub idempotency_key: String,
    /// Free-form string headers.
    pub headers: BTreeMap<String, String>,
    /// CloudEvents attributes the bus does not define (`traceparent`, `partitionkey`,
    /// `dataschema`, ...), kept as they came.
    pub extensions: BTreeMap<String, serde_json::Value>,
    /// The JSON payload (`data`); `Null` when the event has no data or non-JSON bytes.
    pub payload: serde_json::Value,
    /// Data that is not JSON (`data_base64`, or a binary-mode body of another content type).
    binary: Option<Bytes>,
    /// The `datacontenttype` attribute as given.
    content_type: Option<String>,
}

/// The content type of JSON data, the default of `datacontenttype`.
const JSON_CONTENT_TYPE: &str = "application/json";

impl EventEnvelope {
    /// Starts an envelope of the given event type with a JSON payload.
    pub fn builder(event_type: impl Into<String>, payload: serde_json::Value) -> EnvelopeBuilder {
        EnvelopeBuilder::new(event_type.into(), payload)
    }

    /// The idempotency key used when none is given: `{event_type}:{tenant_id}:{event_id}`.
    pub fn default_idempotency_key(event_type: &str, tenant_id: Option<&str>, id: &str) -> String {
        format!("{event_type}:{}:{id}", tenant_id.unwrap_or_default())
    }

    /// The idempotency key of a received event that brings none: CloudEvents makes `source`
    /// plus `id` unique, so `ce:{byte length of source}:{source}:{id}`.
    pub fn source_idempotency_key(source: &str, id: &str) -> String {
        format!("ce:{}:{source}:{id}", source.len())
    }

    /// Starts an envelope for an event caused by this one: same correlation id and tenant,
    /// causation id set to this event's id.
    pub fn caused(
        &self,
        event_type: impl Into<String>,
        payload: serde_json::Value,
    ) -> EnvelopeBuilder {
        let mut builder = Self::builder(event_type, payload)
            .source(self.source.clone())
            .correlation_id(self.correlation_id.clone())
            .causation_id(self.id.clone());
        if let Some(tenant) = &self.tenant_id {
            builder = builder.tenant_id(tenant.clone());
        }
        builder
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct UserRegistered {
        user_id: String,
        email: String,
    }

    impl DomainEvent for UserRegistered {
        const EVENT_TYPE: &'static str = "user.registered";
        const SCHEMA_VERSION: u32 = 2;
        const AGGREGATE_TYPE: &'static str = "user";

        fn aggregate_id(&self) -> String {
            self.user_id.clone()
        }
    }

    fn registered() -> UserRegistered {
        UserRegistered {
            user_id: "u-1".into(),
            email: "zoë@example.com".into(),
        }
    }

    #[test]
    fn serializes_as_a_cloudevents_structured_event() {
        let envelope = EventEnvelope::from_event(&registered())
            .unwrap()
            .source("user-service")
            .tenant_id("acme")
            .header("x-request", "r-1")
            .build();
        let json = serde_json::to_value(&envelope).unwrap();
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["type"], "user.registered");
        assert_eq!(json["source"], "user-service");
        assert_eq!(json["subject"], "u-1");
        assert_eq!(json["aggregatetype"], "user");
        assert_eq!(json["schemaversion"], 2);
        assert_eq!(json["tenantid"], "acme");
        assert_eq!(json["datacontenttype"], "application/json");
        assert_eq!(json["data"]["email"], "zoë@example.com");
        assert_eq!(json["headers"]["x-request"], "r-1");
        assert_eq!(json["id"], envelope.id);
        assert!(
            json.get("causationid").is_none(),
            "absent optional attributes are left out"
        );
    }

    #[test]
    fn defaults_fill_ids_and_the_idempotency_key() {
        let envelope = EventEnvelope::builder("user.registered", serde_json::json!({}))
            .tenant_id("acme")
            .build();
        let id: uuid::Uuid = envelope.id.parse().expect("a UUID");
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(envelope.source, DEFAULT_SOURCE);
        assert_eq!(envelope.correlation_id, envelope.id);
        assert_eq!(
            envelope.idempotency_key,
            format!("user.registered:acme:{}", envelope.id)
        );
        let untenanted = EventEnvelope::builder("user.registered", serde_json::json!({})).build();
        assert_eq!(
            untenanted.idempotency_key,
            format!("user.registered::{}", untenanted.id)
        );
    }

    #[test]
    fn a_caused_event_inherits_correlation_and_tenant() {
        let cause = EventEnvelope::builder("user.registered", serde_json::json!({}))
            .tenant_id("acme")
            .build();
        let effect = cause
            .caused("profile.created", serde_json::json!({}))
            .build();
        assert_eq!(effect.correlation_id, cause.correlation_id);
        assert_eq!(effect.causation_id, Some(cause.id.clone()));
        assert_eq!(effect.tenant_id.as_deref(), Some("acme"));
    }

    #[test]
    fn round_trips_through_a_transport_message() {
        let envelope = EventEnvelope::from_event(&registered())
            .unwrap()
            .tenant_id("acme")
            .build();
        let message = envelope.to_message().unwrap();
        assert_eq!(message.key.as_deref(), Some("u-1"));
        assert_eq!(
            message.headers[wire_headers::CONTENT_TYPE],
            wire_headers::STRUCTURED_CONTENT_TYPE
        );
        assert_eq!(message.headers[wire_headers::TENANT_ID], "acme");
        let decoded = EventEnvelope::from_message(&message).unwrap();
        assert_eq!(decoded, envelope);
        assert_eq!(decoded.decode::<UserRegistered>().unwrap(), registered());
    }

    #[test]
    fn another_spec_version_or_garbage_is_malformed() {
        let envelope = EventEnvelope::builder("x", serde_json::json!({})).build();
        let mut json = serde_json::to_value(&envelope).unwrap();
        json["specversion"] = "0.3".into();
        let message = crate::message::Message::new(serde_json::to_vec(&json).unwrap());
        let error = EventEnvelope::from_message(&message).unwrap_err();
        assert!(
            error.to_string().contains("CloudEvents specversion 1.0"),
            "{error}"
        );
        assert!(EventEnvelope::from_message(&crate::message::Message::new("nope")).is_err());
    }

    #[test]
    fn decoding_names_what_does_not_match() {
        let other = EventEnvelope::builder("user.deleted", serde_json::json!({})).build();
        assert!(
            matches!(other.decode::<UserRegistered>(), Err(DecodeError::TypeMismatch { found, .. }) if found == "user.deleted")
        );

        let newer = EventEnvelope::from_event(&registered())
            .unwrap()
            .schema_version(3)
            .build();
        assert!(matches!(
            newer.decode::<UserRegistered>(),
            Err(DecodeError::UnsupportedSchemaVersion {
                found: 3,
                supported: 2,
                ..
            })
        ));

        let broken =
            EventEnvelope::builder("user.registered", serde_json::json!({"user_id": 1})).build();
        let error = broken.decode::<UserRegistered>().unwrap_err();
        assert!(matches!(error, DecodeError::Payload { .. }));
        assert!(
            error
                .to_string()
                .starts_with("payload of `user.registered` does not match its schema")
        );
    }
}
