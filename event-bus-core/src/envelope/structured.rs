//! The envelope in the CloudEvents JSON event format (structured mode, and how the event
//! store keeps it).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use chrono::SecondsFormat;
use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::EventEnvelope;
use super::attributes::{Attributes, EnvelopeError, SPEC_VERSION};

impl Serialize for EventEnvelope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("specversion", SPEC_VERSION)?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("type", &self.event_type)?;
        map.serialize_entry("source", &self.source)?;
        if !self.aggregate_id.is_empty() {
            map.serialize_entry("subject", &self.aggregate_id)?;
        }
        map.serialize_entry("aggregatetype", &self.aggregate_type)?;
        map.serialize_entry("aggregateversion", &self.aggregate_version)?;
        map.serialize_entry("schemaversion", &self.schema_version)?;
        map.serialize_entry("time", &self.time_text())?;
        map.serialize_entry("correlationid", &self.correlation_id)?;
        if let Some(causation) = &self.causation_id {
            map.serialize_entry("causationid", causation)?;
        }
        if let Some(tenant) = &self.tenant_id {
            map.serialize_entry("tenantid", tenant)?;
        }
        map.serialize_entry("idempotencykey", &self.idempotency_key)?;
        if !self.headers.is_empty() {
            map.serialize_entry("headers", &self.headers)?;
        }
        for (name, value) in &self.extensions {
            map.serialize_entry(name, value)?;
        }
        if let Some(content_type) = &self.content_type {
            map.serialize_entry("datacontenttype", content_type)?;
        }
        match &self.binary {
            Some(bytes) => map.serialize_entry("data_base64", &BASE64.encode(bytes))?,
            None => map.serialize_entry("data", &self.payload)?,
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for EventEnvelope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let object = Map::deserialize(deserializer)?;
        Self::from_json_object(object).map_err(D::Error::custom)
    }
}

impl EventEnvelope {
    /// Reads a structured-mode body: one CloudEvent in the JSON event format.
    pub fn from_structured(body: &[u8]) -> Result<Self, EnvelopeError> {
        match serde_json::from_slice(body)? {
            Value::Object(object) => Self::from_json_object(object),
            _ => Err(EnvelopeError::NotAnObject),
        }
    }

    fn from_json_object(mut object: Map<String, Value>) -> Result<Self, EnvelopeError> {
        let data = object.remove("data").filter(|v| !v.is_null());
        let data_base64 = object.remove("data_base64").filter(|v| !v.is_null());
        let (payload, binary) = match (data, data_base64) {
            (Some(_), Some(_)) => return Err(EnvelopeError::TwoData),
            (data, None) => (data.unwrap_or(Value::Null), None),
            (None, Some(Value::String(text))) => {
                (Value::Null, Some(Bytes::from(BASE64.decode(text)?)))
            }
            (None, Some(other)) => {
                return Err(EnvelopeError::Invalid {
                    name: "data_base64",
                    expected: "a string",
                    value: other.to_string(),
                });
            }
        };
        Attributes::new(object).into_envelope(payload, binary)
    }

    /// `time` as RFC 3339 in UTC, with as many fraction digits as it has.
    pub(super) fn time_text(&self) -> String {
        self.timestamp.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }
}
