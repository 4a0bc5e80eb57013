//! A bus message as NATS headers and back.
//!
//! Each header whose name is a NATS header name (printable ASCII without `:`) and whose value
//! survives NATS's header lines (no line break, no leading or trailing white space) is a NATS
//! header of its own; the key is `Event-Bus-Key`. The rest, and any name NATS reserves
//! (`Nats-…`) or this backend uses, travel JSON-encoded in `Event-Bus-Headers`.

use std::collections::BTreeMap;

use async_nats::HeaderMap;
use bytes::Bytes;
use event_bus_core::Message;

/// The message's key.
const KEY: &str = "Event-Bus-Key";
/// `{"key": …, "headers": {…}}` for what no plain header can carry.
const ENCODED: &str = "Event-Bus-Headers";

/// The NATS headers carrying `message`'s key and headers.
pub(super) fn to_nats(message: &Message) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut encoded = BTreeMap::new();
    for (name, value) in &message.headers {
        if plain_name(name) && plain_value(value) {
            headers.insert(name.as_str(), value.as_str());
        } else {
            encoded.insert(name.as_str(), value.as_str());
        }
    }
    let mut encoded_key = None;
    if let Some(key) = &message.key {
        if plain_value(key) {
            headers.insert(KEY, key.as_str());
        } else {
            encoded_key = Some(key.as_str());
        }
    }
    if !encoded.is_empty() || encoded_key.is_some() {
        let json = serde_json::json!({ "key": encoded_key, "headers": encoded });
        headers.insert(ENCODED, json.to_string());
    }
    headers
}

/// The message a NATS message carries; NATS's own headers (`Nats-…`) are left out.
pub(super) fn from_nats(headers: Option<&HeaderMap>, payload: Bytes) -> Message {
    let mut message = Message::new(payload);
    for (name, values) in headers.into_iter().flat_map(HeaderMap::iter) {
        let name: &str = name.as_ref();
        let Some(value) = values.last().map(|value| value.as_str()) else {
            continue;
        };
        if name == KEY {
            message.key = Some(value.to_owned());
        } else if name == ENCODED {
            if !decode_into(value, &mut message) {
                message.headers.insert(name.to_owned(), value.to_owned());
            }
        } else if !is_nats_own(name) {
            message.headers.insert(name.to_owned(), value.to_owned());
        }
    }
    message
}

/// Adds the key and headers of an `Event-Bus-Headers` value; `false` if it is not one.
fn decode_into(value: &str, message: &mut Message) -> bool {
    let Ok(serde_json::Value::Object(mut encoded)) = serde_json::from_str(value) else {
        return false;
    };
    let Ok(headers) = serde_json::from_value::<BTreeMap<String, String>>(
        encoded.remove("headers").unwrap_or_default(),
    ) else {
        return false;
    };
    if let Some(serde_json::Value::String(key)) = encoded.remove("key") {
        message.key = Some(key);
    }
    message.headers.extend(headers);
    true
}

fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
        && !is_nats_own(name)
        && !name.eq_ignore_ascii_case(KEY)
        && !name.eq_ignore_ascii_case(ENCODED)
}

fn plain_value(value: &str) -> bool {
    !value.contains(['\r', '\n']) && value.trim() == value
}

fn is_nats_own(name: &str) -> bool {
    name.get(..5)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("nats-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(message: &Message) -> Message {
        let headers = to_nats(message);
        from_nats(Some(&headers), message.payload.clone())
    }

    #[test]
    fn plain_headers_are_nats_headers() {
        let message = Message::new("{}")
            .with_key("agg-1")
            .with_header("x-greeting", "grüß dich ✓")
            .with_header("event_type", "user.registered");
        let headers = to_nats(&message);
        assert_eq!(headers.get("x-greeting").unwrap().as_str(), "grüß dich ✓");
        assert_eq!(headers.get(KEY).unwrap().as_str(), "agg-1");
        assert!(headers.get(ENCODED).is_none());
        assert_eq!(round_trip(&message), message);
    }

    #[test]
    fn what_a_nats_header_cannot_carry_still_round_trips() {
        let message = Message::new("{}")
            .with_key(" padded key\n")
            .with_header("two\nlines", "x")
            .with_header("colon:name", "y")
            .with_header("ünicode-name", "z")
            .with_header("Nats-Msg-Id", "not for the server")
            .with_header("event-bus-key", "a header named like the key")
            .with_header("trailing", "space ")
            .with_header("empty", "");
        let headers = to_nats(&message);
        assert!(headers.get("Nats-Msg-Id").is_none());
        assert_eq!(round_trip(&message), message);
    }
}
