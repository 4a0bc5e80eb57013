//! An event's attributes, read in either content mode, with the bus's defaults for what a
//! CloudEvent leaves out.

use std::collections::BTreeMap;
use std::str::FromStr;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::EventEnvelope;

/// The only CloudEvents version the bus reads and writes.
pub(super) const SPEC_VERSION: &str = "1.0";

/// Why a CloudEvent could not be read as an envelope.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// The body is not JSON.
    #[error("not a JSON CloudEvent: {0}")]
    Json(#[from] serde_json::Error),
    /// The body is JSON but not an object.
    #[error("a structured CloudEvent is a JSON object")]
    NotAnObject,
    /// `specversion` names another version.
    #[error("expected CloudEvents specversion 1.0, found `{0}`")]
    SpecVersion(String),
    /// A required attribute is absent.
    #[error("the required CloudEvents attribute `{0}` is missing")]
    Missing(&'static str),
    /// A required attribute is an empty string.
    #[error("the CloudEvents attribute `{0}` is empty")]
    Empty(&'static str),
    /// An attribute has a value of the wrong kind.
    #[error("the attribute `{name}` is not {expected}: {value}")]
    Invalid {
        /// The attribute.
        name: &'static str,
        /// What it must be.
        expected: &'static str,
        /// The value found.
        value: String,
    },
    /// Both `data` and `data_base64` are present.
    #[error("an event carries `data` or `data_base64`, not both")]
    TwoData,
    /// `data_base64` does not decode.
    #[error("`data_base64` is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
}

/// The attributes of an event, by name, and its data.
pub(super) struct Attributes(Map<String, Value>);

impl Attributes {
    pub(super) fn new(map: Map<String, Value>) -> Self {
        Self(map)
    }

    /// The envelope these attributes and data describe, with the bus's defaults for absent
    /// attributes; attributes the bus does not define become extensions.
    pub(super) fn into_envelope(
        mut self,
        payload: Value,
        binary: Option<Bytes>,
    ) -> Result<EventEnvelope, EnvelopeError> {
        let spec_version = self.string("specversion")?;
        match spec_version.as_deref() {
            Some(SPEC_VERSION) => {}
            Some(other) => return Err(EnvelopeError::SpecVersion(other.to_owned())),
            None => return Err(EnvelopeError::Missing("specversion")),
        }
        let id = self.required("id")?;
        // Events the bus published before it gave a default source carry an empty one.
        let source = self
            .string("source")?
            .ok_or(EnvelopeError::Missing("source"))?;
        let event_type = self.required("type")?;
        let correlation_id = self.string("correlationid")?.unwrap_or_else(|| id.clone());
        let idempotency_key = self
            .string("idempotencykey")?
            .unwrap_or_else(|| EventEnvelope::source_idempotency_key(&source, &id));
        Ok(EventEnvelope {
            aggregate_id: self.string("subject")?.unwrap_or_default(),
            aggregate_type: self.string("aggregatetype")?.unwrap_or_default(),
            aggregate_version: self.number("aggregateversion")?.unwrap_or(0),
            schema_version: self.number("schemaversion")?.unwrap_or(1),
            timestamp: self.time("time")?.unwrap_or_else(Utc::now),
            causation_id: self.string("causationid")?,
            tenant_id: self.string("tenantid")?,
            headers: self.headers()?,
            content_type: self.string("datacontenttype")?,
            extensions: self.0.into_iter().collect(),
            id,
            event_type,
            source,
            correlation_id,
            idempotency_key,
            payload,
            binary,
        })
    }

    /// Takes an attribute out; `null` counts as absent.
    fn take(&mut self, name: &str) -> Option<Value> {
        self.0.remove(name).filter(|value| !value.is_null())
    }

    fn string(&mut self, name: &'static str) -> Result<Option<String>, EnvelopeError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(invalid(name, "a string", &other)),
        }
    }

    fn required(&mut self, name: &'static str) -> Result<String, EnvelopeError> {
        match self.string(name)? {
            None => Err(EnvelopeError::Missing(name)),
            Some(text) if text.is_empty() => Err(EnvelopeError::Empty(name)),
            Some(text) => Ok(text),
        }
    }

    /// A non-negative integer, given as a JSON number or (binary mode) as its text.
    fn number<N: FromStr + TryFrom<u64>>(
        &mut self,
        name: &'static str,
    ) -> Result<Option<N>, EnvelopeError> {
        let Some(value) = self.take(name) else {
            return Ok(None);
        };
        let number = match &value {
            Value::Number(n) => n.as_u64().and_then(|n| N::try_from(n).ok()),
            Value::String(text) => text.trim().parse().ok(),
            _ => None,
        };
        number
            .map(Some)
            .ok_or_else(|| invalid(name, "a non-negative integer", &value))
    }

    fn time(&mut self, name: &'static str) -> Result<Option<DateTime<Utc>>, EnvelopeError> {
        let Some(value) = self.take(name) else {
            return Ok(None);
        };
        value
            .as_str()
            .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
            .map(|time| Some(time.with_timezone(&Utc)))
            .ok_or_else(|| invalid(name, "an RFC 3339 timestamp", &value))
    }

    /// The `headers` extension: an object of strings, or (binary mode) its JSON text.
    fn headers(&mut self) -> Result<BTreeMap<String, String>, EnvelopeError> {
        let Some(value) = self.take("headers") else {
            return Ok(BTreeMap::new());
        };
        let object = match &value {
            Value::String(text) => serde_json::from_str(text).ok(),
            other => serde_json::from_value(other.clone()).ok(),
        };
        object.ok_or_else(|| invalid("headers", "an object of strings", &value))
    }
}

fn invalid(name: &'static str, expected: &'static str, value: &Value) -> EnvelopeError {
    EnvelopeError::Invalid {
        name,
        expected,
        value: value.to_string(),
    }
}
