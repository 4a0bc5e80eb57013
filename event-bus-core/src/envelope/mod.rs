//! The event envelope: what travels on every backend, serialized as a CloudEvents 1.0 JSON event.

mod builder;
mod domain_event;
mod spec_version;
mod wire;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use builder::EnvelopeBuilder;
pub use domain_event::{DecodeError, DomainEvent};
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
