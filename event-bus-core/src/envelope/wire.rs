//! Conversion between envelopes and transport [`Message`]s, in either CloudEvents content
//! mode; the mode of a received message is detected from its headers.
//!
//! Header names here are those of the CloudEvents Kafka binding (`content-type`, `ce_{name}`);
//! each backend renames them to its own binding's names and back.

use serde_json::{Map, Value};

use crate::message::Message;

use super::EventEnvelope;
use super::attributes::{Attributes, EnvelopeError, SPEC_VERSION};
use super::data::is_json;

/// Header names of transport messages: the bus's own, and the CloudEvents ones.
pub mod headers {
    /// CloudEvents id of the carried event, in binary mode (and on messages from before).
    pub const EVENT_ID: &str = "ce_id";
    /// CloudEvents type of the carried event, in binary mode (and on messages from before).
    pub const EVENT_TYPE: &str = "ce_type";
    /// Tenant of the carried event, when it has one: set by the bus in both modes, for
    /// routing and server-side filters.
    pub const TENANT_ID: &str = "tenant_id";
    /// Media type of the body: [`STRUCTURED_CONTENT_TYPE`] in structured mode, the data's
    /// content type in binary mode.
    pub const CONTENT_TYPE: &str = "content-type";
    /// Prefix of a CloudEvents attribute carried as a header (`ce_id`, `ce_source`, ...).
    pub const ATTRIBUTE_PREFIX: &str = "ce_";
    /// The binary-mode `specversion` attribute, whose presence marks a binary-mode message.
    pub const SPEC_VERSION: &str = "ce_specversion";
    /// Content type of a structured-mode body (the prefix `application/cloudevents` is what
    /// marks structured mode).
    pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json";
}

/// How an event is put into a transport message: the CloudEvents content modes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentMode {
    /// The whole event as one JSON body, `content-type: application/cloudevents+json`.
    #[default]
    Structured,
    /// The data as the body, every attribute as a `ce_` header.
    Binary,
}

/// Why a transport message could not be read as an envelope.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The message is not a CloudEvents 1.0 event the bus can read.
    #[error("malformed event payload: {0}")]
    Malformed(#[from] EnvelopeError),
}

impl EventEnvelope {
    /// Encodes the envelope as a structured-mode transport message keyed by aggregate id
    /// (else by its `partitionkey` extension).
    pub fn to_message(&self) -> Result<Message, serde_json::Error> {
        self.to_message_in(ContentMode::Structured)
    }

    /// Encodes the envelope in the given content mode, keyed like [`Self::to_message`], with the bus's
    /// transport header `tenant_id` taken from the event (binary mode: and `ce_id`, `ce_type`
    /// among the attributes).
    pub fn to_message_in(&self, mode: ContentMode) -> Result<Message, serde_json::Error> {
        let mut message = match mode {
            // No `ce_` header: the bindings' readers (the Python SDK's Kafka one among them)
            // take any `ce_` header for binary mode.
            ContentMode::Structured => Message::new(serde_json::to_vec(self)?)
                .with_header(headers::CONTENT_TYPE, headers::STRUCTURED_CONTENT_TYPE),
            ContentMode::Binary => self.binary_message(),
        };
        if let Some(tenant) = &self.tenant_id {
            message = message.with_header(headers::TENANT_ID, tenant.clone());
        }
        if let Some(key) = self.ordering_key() {
            message = message.with_key(key.to_owned());
        }
        Ok(message)
    }

    /// The message key: the aggregate id, else the CloudEvents `partitionkey` extension.
    fn ordering_key(&self) -> Option<&str> {
        if !self.aggregate_id.is_empty() {
            return Some(&self.aggregate_id);
        }
        self.extensions
            .get("partitionkey")
            .and_then(Value::as_str)
            .filter(|key| !key.is_empty())
    }

    fn binary_message(&self) -> Message {
        let mut message = Message::new(self.data_bytes().into_owned())
            .with_header(headers::CONTENT_TYPE, self.data_content_type());
        let mut attribute = |name: &str, value: String| {
            message
                .headers
                .insert(format!("{}{name}", headers::ATTRIBUTE_PREFIX), value);
        };
        attribute("specversion", SPEC_VERSION.to_owned());
        attribute("id", self.id.clone());
        attribute("source", self.source.clone());
        attribute("type", self.event_type.clone());
        if !self.aggregate_id.is_empty() {
            attribute("subject", self.aggregate_id.clone());
        }
        attribute("aggregatetype", self.aggregate_type.clone());
        attribute("aggregateversion", self.aggregate_version.to_string());
        attribute("schemaversion", self.schema_version.to_string());
        attribute("time", self.time_text());
        attribute("correlationid", self.correlation_id.clone());
        if let Some(causation) = &self.causation_id {
            attribute("causationid", causation.clone());
        }
        if let Some(tenant) = &self.tenant_id {
            attribute("tenantid", tenant.clone());
        }
        attribute("idempotencykey", self.idempotency_key.clone());
        if !self.headers.is_empty() {
            let json = serde_json::to_string(&self.headers).unwrap_or_default();
            attribute("headers", json);
        }
        for (name, value) in &self.extensions {
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            attribute(name, text);
        }
        message
    }

    /// Decodes a transport message in the mode it is in: structured when its `content-type`
    /// starts with `application/cloudevents`, binary when it carries `ce_specversion`, and
    /// otherwise structured (how the bus published before it set a content type).
    pub fn from_message(message: &Message) -> Result<Self, WireError> {
        Ok(match content_mode(message) {
            ContentMode::Structured => Self::from_structured(&message.payload)?,
            ContentMode::Binary => Self::from_binary(message)?,
        })
    }

    fn from_binary(message: &Message) -> Result<Self, EnvelopeError> {
        let mut attributes = Map::new();
        for (name, value) in &message.headers {
            if let Some(attribute) = name.strip_prefix(headers::ATTRIBUTE_PREFIX) {
                attributes.insert(attribute.to_owned(), Value::String(value.clone()));
            }
        }
        if let Some(content_type) = message.headers.get(headers::CONTENT_TYPE) {
            attributes.insert("datacontenttype".into(), content_type.clone().into());
        }
        let json = attributes
            .get("datacontenttype")
            .and_then(Value::as_str)
            .is_none_or(is_json);
        let body = &message.payload;
        let (payload, binary) = if body.is_empty() {
            (Value::Null, None)
        } else {
            match json.then(|| serde_json::from_slice(body).ok()).flatten() {
                Some(payload) => (payload, None),
                None => (Value::Null, Some(body.clone())),
            }
        };
        Attributes::new(attributes).into_envelope(payload, binary)
    }
}

/// The content mode a received message is in.
pub fn content_mode(message: &Message) -> ContentMode {
    const STRUCTURED: &str = "application/cloudevents";
    let structured = message
        .headers
        .get(headers::CONTENT_TYPE)
        .and_then(|content_type| content_type.trim_start().get(..STRUCTURED.len()))
        .is_some_and(|start| start.eq_ignore_ascii_case(STRUCTURED));
    let binary = message.headers.contains_key(headers::SPEC_VERSION);
    if binary && !structured {
        ContentMode::Binary
    } else {
        ContentMode::Structured
    }
}

/// The tenant a message's headers name, read without decoding it: the `tenant_id` transport
/// header, else a binary-mode `ce_tenantid`. `None` when only the body can tell.
pub fn header_tenant(message: &Message) -> Option<&str> {
    message
        .headers
        .get(headers::TENANT_ID)
        .or_else(|| message.headers.get("ce_tenantid"))
        .map(String::as_str)
}
