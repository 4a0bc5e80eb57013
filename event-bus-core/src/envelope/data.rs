//! The event's data: JSON, or bytes of another content type, and the content type.

use std::borrow::Cow;

use bytes::Bytes;

use super::{EventEnvelope, JSON_CONTENT_TYPE};

impl EventEnvelope {
    /// The `datacontenttype` attribute, or `application/json` when the event names none.
    pub fn data_content_type(&self) -> &str {
        self.content_type.as_deref().unwrap_or(JSON_CONTENT_TYPE)
    }

    /// The data when it is not JSON: `data_base64`, or a binary-mode body whose content type
    /// is not JSON. `None` when the data is the JSON [`payload`](Self::payload).
    pub fn binary_data(&self) -> Option<&Bytes> {
        self.binary.as_ref()
    }

    /// The data as bytes of [`data_content_type`](Self::data_content_type): binary data as it
    /// came, a JSON string under a non-JSON content type (such as `text/plain`) as its text,
    /// any other payload as its JSON text.
    pub fn data_bytes(&self) -> Cow<'_, [u8]> {
        if let Some(bytes) = &self.binary {
            return Cow::Borrowed(bytes);
        }
        match &self.payload {
            serde_json::Value::String(text) if !is_json(self.data_content_type()) => {
                Cow::Borrowed(text.as_bytes())
            }
            payload => Cow::Owned(serde_json::to_vec(payload).unwrap_or_default()),
        }
    }
}

/// Whether a media type is JSON: `application/json`, `text/json` or any `…+json`.
pub(super) fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence == "text/json" || essence.ends_with("+json")
}
