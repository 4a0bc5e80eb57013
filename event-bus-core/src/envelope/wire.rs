//! Conversion between envelopes and transport [`Message`]s.

use crate::message::Message;

use super::EventEnvelope;

/// Transport headers the bus sets on every message, for routing and server-side filters.
pub mod headers {
    /// CloudEvents id of the carried event.
    pub const EVENT_ID: &str = "ce_id";
    /// CloudEvents type of the carried event.
    pub const EVENT_TYPE: &str = "ce_type";
    /// Tenant of the carried event, when it has one.
    pub const TENANT_ID: &str = "tenant_id";
}

/// Why a transport message could not be read as an envelope.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The payload is not a CloudEvents 1.0 JSON envelope.
    #[error("malformed event payload: {0}")]
    Malformed(#[from] serde_json::Error),
}

impl EventEnvelope {
    /// Encodes the envelope as a transport message keyed by aggregate id.
    pub fn to_message(&self) -> Result<Message, serde_json::Error> {
        let payload = serde_json::to_vec(self)?;
        let mut message = Message::new(payload)
            .with_header(headers::EVENT_ID, self.id.to_string())
            .with_header(headers::EVENT_TYPE, self.event_type.clone());
        if let Some(tenant) = &self.tenant_id {
            message = message.with_header(headers::TENANT_ID, tenant.clone());
        }
        if !self.aggregate_id.is_empty() {
            message = message.with_key(self.aggregate_id.clone());
        }
        Ok(message)
    }

    /// Decodes a transport message's payload as an envelope.
    pub fn from_message(message: &Message) -> Result<Self, WireError> {
        Ok(serde_json::from_slice(&message.payload)?)
    }
}
