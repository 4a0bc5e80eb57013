//! Builder for [`EventEnvelope`], filling ids, timestamps and the default idempotency key.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{EventEnvelope, JSON_CONTENT_TYPE};

/// The source of an event built without one.
pub const DEFAULT_SOURCE: &str = "event-bus";

/// Builds an [`EventEnvelope`]; every field not set gets a sensible default.
#[derive(Debug, Clone)]
#[must_use]
pub struct EnvelopeBuilder {
    event_type: String,
    payload: serde_json::Value,
    id: Option<String>,
    source: String,
    aggregate_id: String,
    aggregate_type: String,
    aggregate_version: u64,
    schema_version: u32,
    timestamp: Option<DateTime<Utc>>,
    correlation_id: Option<String>,
    causation_id: Option<String>,
    tenant_id: Option<String>,
    idempotency_key: Option<String>,
    headers: BTreeMap<String, String>,
    extensions: BTreeMap<String, serde_json::Value>,
    binary: Option<(String, Bytes)>,
}

impl EnvelopeBuilder {
    pub(super) fn new(event_type: String, payload: serde_json::Value) -> Self {
        Self {
            event_type,
            payload,
            id: None,
            source: DEFAULT_SOURCE.to_owned(),
            aggregate_id: String::new(),
            aggregate_type: String::new(),
            aggregate_version: 0,
            schema_version: 1,
            timestamp: None,
            correlation_id: None,
            causation_id: None,
            tenant_id: None,
            idempotency_key: None,
            headers: BTreeMap::new(),
            extensions: BTreeMap::new(),
            binary: None,
        }
    }

    /// Sets the event id (default: a new UUID v7).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the producing service (default `event-bus`).
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }

    /// Sets the aggregate type, id and version after this event.
    pub fn aggregate(
        mut self,
        aggregate_type: impl Into<String>,
        aggregate_id: impl Into<String>,
        version: u64,
    ) -> Self {
        self.aggregate_type = aggregate_type.into();
        self.aggregate_id = aggregate_id.into();
        self.aggregate_version = version;
        self
    }

    /// Sets the aggregate version after this event.
    pub fn aggregate_version(mut self, version: u64) -> Self {
        self.aggregate_version = version;
        self
    }

    /// Sets the payload schema version (default 1).
    pub fn schema_version(mut self, version: u32) -> Self {
        self.schema_version = version;
        self
    }

    /// Sets when the event happened (default: now).
    pub fn timestamp(mut self, timestamp: DateTime<Utc>) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// Sets the correlation id (default: the event's own id).
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Sets the id of the event or command that caused this one.
    pub fn causation_id(mut self, id: impl Into<String>) -> Self {
        self.causation_id = Some(id.into());
        self
    }

    /// Sets the tenant.
    pub fn tenant_id(mut self, tenant: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant.into());
        self
    }

    /// Sets the idempotency key (default `{event_type}:{tenant_id}:{event_id}`).
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Adds a string header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Adds a CloudEvents extension attribute (a string, number or boolean).
    pub fn extension(
        mut self,
        name: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.extensions.insert(name.into(), value.into());
        self
    }

    /// Makes the data these bytes of `content_type` instead of the JSON payload.
    pub fn binary_data(mut self, content_type: impl Into<String>, data: impl Into<Bytes>) -> Self {
        self.binary = Some((content_type.into(), data.into()));
        self
    }

    /// Finishes the envelope.
    pub fn build(self) -> EventEnvelope {
        let id = self.id.unwrap_or_else(|| Uuid::now_v7().to_string());
        let idempotency_key = self.idempotency_key.unwrap_or_else(|| {
            EventEnvelope::default_idempotency_key(&self.event_type, self.tenant_id.as_deref(), &id)
        });
        let (content_type, binary, payload) = match self.binary {
            Some((content_type, bytes)) => (content_type, Some(bytes), serde_json::Value::Null),
            None => (JSON_CONTENT_TYPE.to_owned(), None, self.payload),
        };
        EventEnvelope {
            event_type: self.event_type,
            source: self.source,
            aggregate_id: self.aggregate_id,
            aggregate_type: self.aggregate_type,
            aggregate_version: self.aggregate_version,
            schema_version: self.schema_version,
            timestamp: self.timestamp.unwrap_or_else(Utc::now),
            correlation_id: self.correlation_id.unwrap_or_else(|| id.clone()),
            id,
            causation_id: self.causation_id,
            tenant_id: self.tenant_id,
            idempotency_key,
            headers: self.headers,
            extensions: self.extensions,
            payload,
            binary,
            content_type: Some(content_type),
        }
    }
}
