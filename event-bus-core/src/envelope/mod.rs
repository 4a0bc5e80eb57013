//! The event envelope: what travels on every backend, serialized as a CloudEvents 1.0 JSON event.

mod builder;
mod domain_event;
mod replay_marker;
mod spec_version;
mod wire;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use builder::EnvelopeBuilder;
pub use domain_event::{DecodeError, DomainEvent};
pub use replay_marker::{REPLAYED_HEADER, SkipReplays, skip_replays};
pub use wire::{WireError, headers as wire_headers};

use spec_version::SpecVersion;

/// A domain event with its metadata, in CloudEvents 1.0 structured JSON form.
///
/// Field names on the wire are CloudEvents attributes where one exists (`id`, `type`, `source`,
/// `subject` for the aggregate id, `time`, `datacontenttype`, `data`) and lower-case CloudEvents
/// extension attributes otherwise (`aggregatetype`, `aggregateversion`, `schemaversion`,
/// `correlationid`, `causationid`, `tenantid`, `idempotencykey`, `headers`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    #[serde(rename = "specversion")]
    spec_version: SpecVersion,
    /// Unique id of this event (UUID v7, so ids sort by creation time).
    pub id: Uuid,
    /// Event type name, such as `user.registered`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The service or component that produced the event.
    pub source: String,
    /// Id of the aggregate the event belongs to; also the ordering key.
    #[serde(rename = "subject")]
    pub aggregate_id: String,
    /// Type of the aggregate, such as `user`.
    #[serde(rename = "aggregatetype")]
    pub aggregate_type: String,
    /// Version of the aggregate after this event.
    #[serde(rename = "aggregateversion")]
    pub aggregate_version: u64,
    /// Version of the payload schema of this event type.
    #[serde(rename = "schemaversion")]
    pub schema_version: u32,
    /// When the event happened.
    #[serde(rename = "time")]
    pub timestamp: DateTime<Utc>,
    /// Id shared by every event of one business transaction.
    #[serde(rename = "correlationid")]
    pub correlation_id: Uuid,
    /// Id of the event or command that caused this one.
    #[serde(
        rename = "causationid",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub causation_id: Option<Uuid>,
    /// Tenant the event belongs to.
    #[serde(rename = "tenantid", default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Key under which handlers deduplicate deliveries of this event.
    #[serde(rename = "idempotencykey")]
    pub idempotency_key: String,
    /// Free-form string headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The JSON payload.
    #[serde(rename = "data")]
    pub payload: serde_json::Value,
    #[serde(rename = "datacontenttype", default = "json_content_type")]
    content_type: String,
}

fn json_content_type() -> String {
    "application/json".to_owned()
}

impl EventEnvelope {
    /// Starts an envelope of the given event type with a JSON payload.
    pub fn builder(event_type: impl Into<String>, payload: serde_json::Value) -> EnvelopeBuilder {
        EnvelopeBuilder::new(event_type.into(), payload)
    }

    /// The idempotency key used when none is given: `{event_type}:{tenant_id}:{event_id}`.
    pub fn default_idempotency_key(event_type: &str, tenant_id: Option<&str>, id: Uuid) -> String {
        format!("{event_type}:{}:{id}", tenant_id.unwrap_or_default())
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
            .correlation_id(self.correlation_id)
            .causation_id(self.id);
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
        assert_eq!(json["id"], envelope.id.to_string());
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
        assert_eq!(envelope.id.get_version_num(), 7);
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
        assert_eq!(effect.causation_id, Some(cause.id));
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
        assert_eq!(message.headers[wire_headers::EVENT_TYPE], "user.registered");
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
