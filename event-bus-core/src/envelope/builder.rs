//! Builder for [`EventEnvelope`], filling ids, timestamps and the default idempotency key.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::EventEnvelope;
use super::spec_version::SpecVersion;

/// Builds an [`EventEnvelope`]; every field not set gets a sensible default.
#[derive(Debug, Clone)]
#[must_use]
pub struct EnvelopeBuilder {
    event_type: String,
    payload: serde_json::Value,
    id: Option<Uuid>,
    source: String,
    aggregate_id: String,
    aggregate_type: String,
    aggregate_version: u64,
    schema_version: u32,
    timestamp: Option<DateTime<Utc>>,
    correlation_id: Option<Uuid>,
    causation_id: Option<Uuid>,
    tenant_id: Option<String>,
    idempotency_key: Option<String>,
    headers: BTreeMap<String, String>,
}

impl EnvelopeBuilder {
    pub(super) fn new(event_type: String, payload: serde_json::Value) -> Self {
        Self {
            event_type,
            payload,
            id: None,
            source: String::new(),
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
        }
    }

    /// Sets the event id (default: a new UUID v7).
    pub fn id(mut self, id: Uuid) -> Self {
        self.id = Some(id);
        self
    }

    /// Sets the producing service.
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
    pub fn correlation_id(mut self, id: Uuid) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// Sets the id of the event or command that caused this one.
    pub fn causation_id(mut self, id: Uuid) -> Self {
        self.causation_id = Some(id);
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

    /// Finishes the envelope.
    pub fn build(self) -> EventEnvelope {
        let id = self.id.unwrap_or_else(Uuid::now_v7);
        let idempotency_key = self.idempotency_key.unwrap_or_else(|| {
            EventEnvelope::default_idempotency_key(&self.event_type, self.tenant_id.as_deref(), id)
        });
        EventEnvelope {
            spec_version: SpecVersion,
            id,
            event_type: self.event_type,
            source: self.source,
            aggregate_id: self.aggregate_id,
            aggregate_type: self.aggregate_type,
            aggregate_version: self.aggregate_version,
            schema_version: self.schema_version,
            timestamp: self.timestamp.unwrap_or_else(Utc::now),
            correlation_id: self.correlation_id.unwrap_or(id),
            causation_id: self.causation_id,
            tenant_id: self.tenant_id,
            idempotency_key,
            headers: self.headers,
            payload: self.payload,
            content_type: super::json_content_type(),
        }
    }
}
