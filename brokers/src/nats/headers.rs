//! A bus message as NATS headers and back.
//!
//! Each header whose name is a NATS header name (printable ASCII without `:`) and whose value
//! survives NATS's header lines (no line break, no leading or trailing white space) is a NATS
//! header of its own; the key is `Event-Bus-Key`. The rest, and any name NATS reserves
//! (`Nats-…`) or this backend uses, travel JSON-encoded in `Event-Bus-Headers`.
//!
//! CloudEvents attributes follow the CloudEvents NATS binding: `ce_{name}` is the header
//! `ce-{name}` with its value percent-encoded, and `content-type` is `Content-Type`.

use std::collections::BTreeMap;

use async_nats::HeaderMap;
use bytes::Bytes;
use event_bus_core::Message;
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// The message's key.
const KEY: &str = "Event-Bus-Key";
/// Prefix of a CloudEvents attribute in the message's headers.
const CE_PREFIX: &str = "ce_";
/// Prefix of a CloudEvents attribute among NATS headers.
const NATS_CE_PREFIX: &str = "ce-";
/// The message's content type, and its NATS header.
const CONTENT_TYPE: &str = "content-type";
const NATS_CONTENT_TYPE: &str = "Content-Type";
/// `datacontenttype` in binary mode, as the message has it and as the NATS binding names it.
const CE_DATACONTENTTYPE: &str = "ce_datacontenttype";
const NATS_CE_DATACONTENTTYPE: &str = "ce-datacontenttype";
/// What the NATS binding percent-encodes in a `ce-` value: controls, space, `"`, `%`, and
/// (always) every byte outside ASCII.
const ENCODED_IN_VALUES: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'%');
/// `{"key": …, "headers": {…}}` for what no plain header can carry.
const ENCODED: &str = "Event-Bus-Headers";

/// The NATS headers carrying `message`'s key and headers.
pub(super) fn to_nats(message: &Message) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut encoded = BTreeMap::new();
    for (name, value) in &message.headers {
        if let Some(attribute) = name.strip_prefix(CE_PREFIX)
            && plain_name(&format!("{NATS_CE_PREFIX}{attribute}"))
        {
            let encoded = utf8_percent_encode(value, ENCODED_IN_VALUES).to_string();
            headers.insert(format!("{NATS_CE_PREFIX}{attribute}").as_str(), encoded);
        } else if name == CONTENT_TYPE && plain_value(value) {
            headers.insert(NATS_CONTENT_TYPE, value.as_str());
            if is_binary_mode(message) && !message.headers.contains_key(CE_DATACONTENTTYPE) {
                // The NATS binding carries `datacontenttype` as a `ce-` header too.
                let encoded = utf8_percent_encode(value, ENCODED_IN_VALUES).to_string();
                headers.insert(NATS_CE_DATACONTENTTYPE, encoded);
            }
        } else if plain_name(name) && plain_value(value) {
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
        } else if let Some(attribute) = strip_prefix_ignoring_case(name, NATS_CE_PREFIX) {
            let name = format!("{CE_PREFIX}{}", attribute.to_ascii_lowercase());
            message.headers.insert(name, attribute_value(value));
        } else if name.eq_ignore_ascii_case(CONTENT_TYPE) {
            message
                .headers
                .insert(CONTENT_TYPE.to_owned(), value.to_owned());
        } else if !is_nats_own(name) {
            message.headers.insert(name.to_owned(), value.to_owned());
        }
    }
    if message.headers.get(CE_DATACONTENTTYPE) == message.headers.get(CONTENT_TYPE) {
        // Written beside `Content-Type` by `to_nats`; the message has it once.
        message.headers.remove(CE_DATACONTENTTYPE);
    }
    message
}

fn is_binary_mode(message: &Message) -> bool {
    message.headers.contains_key("ce_specversion")
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

/// A `ce-` header's value: unquoted if double-quoted, then percent-decoded (kept as it is
/// when that is not UTF-8).
fn attribute_value(value: &str) -> String {
    let unquoted = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(quoted) => {
            let mut text = String::with_capacity(quoted.len());
            let mut chars = quoted.chars();
            while let Some(c) = chars.next() {
                text.push(if c == '\\' {
                    chars.next().unwrap_or(c)
                } else {
                    c
                });
            }
            text
        }
        None => value.to_owned(),
    };
    percent_decode_str(&unquoted)
        .decode_utf8()
        .map_or(unquoted.clone(), |decoded| decoded.into_owned())
}

fn strip_prefix_ignoring_case<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let head = name.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &name[prefix.len()..])
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
    fn cloudevents_attributes_follow_the_nats_binding() {
        let message = Message::new("hi")
            .with_header("ce_id", "e-1")
            .with_header("ce_source", "Euro € \"quoted\" 100%")
            .with_header("content-type", "text/plain");
        let headers = to_nats(&message);
        assert_eq!(headers.get("ce-id").unwrap().as_str(), "e-1");
        assert_eq!(
            headers.get("ce-source").unwrap().as_str(),
            "Euro%20%E2%82%AC%20%22quoted%22%20100%25"
        );
        assert_eq!(headers.get("Content-Type").unwrap().as_str(), "text/plain");
        assert_eq!(round_trip(&message), message);

        let binary = message.clone().with_header("ce_specversion", "1.0");
        let headers = to_nats(&binary);
        assert_eq!(
            headers.get("ce-datacontenttype").unwrap().as_str(),
            "text/plain"
        );
        assert_eq!(round_trip(&binary), binary);

        let mut foreign = HeaderMap::new();
        foreign.insert("CE-Type", "\"a b\"");
        foreign.insert("content-type", "application/json");
        let received = from_nats(Some(&foreign), Bytes::new());
        assert_eq!(received.headers["ce_type"], "a b");
        assert_eq!(received.headers["content-type"], "application/json");
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
