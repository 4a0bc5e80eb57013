//! A transport message as AMQP properties and body, and back, by the CloudEvents AMQP binding:
//! the message's `content-type` is the AMQP `content_type` property, and each `ce_{name}`
//! attribute header is the `cloudEvents:{name}` header (`cloudEvents_{name}` is read too).

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat};
use event_bus_core::Message;
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString};

/// Header carrying the message's ordering key.
const KEY: &str = "x-event-bus-key";
/// Header carrying the attempts made before the message was republished for a delayed retry.
const EARLIER_ATTEMPTS: &str = "x-event-bus-attempts";
/// Header in which a quorum queue counts earlier deliveries of a message.
const DELIVERY_COUNT: &str = "x-delivery-count";
/// Headers RabbitMQ adds when a message passes through a dead-letter exchange.
const BROKER_HEADER_PREFIXES: [&str; 3] = ["x-death", "x-first-death-", "x-last-death-"];
/// Prefix of a CloudEvents attribute in the message's headers.
const CE_PREFIX: &str = "ce_";
/// Prefix of a CloudEvents attribute among AMQP application properties (headers).
const AMQP_CE_PREFIX: &str = "cloudEvents:";
/// Prefixes read as CloudEvents attributes: the AMQP binding's, the one it allows for JMS,
/// and the one of the Python SDK's RabbitMQ binding.
const AMQP_CE_PREFIXES: [&str; 3] = [AMQP_CE_PREFIX, "cloudEvents_", "ce-"];
/// The message header that is the AMQP `content_type` property.
const CONTENT_TYPE: &str = "content-type";
/// AMQP delivery mode of messages written to disk.
const PERSISTENT: u8 = 2;

/// Properties of a persistent message carrying `message`'s key and headers, plus the attempts
/// already made when it is a delayed retry.
pub(super) fn properties(message: &Message, earlier_attempts: Option<u32>) -> BasicProperties {
    let mut headers = FieldTable::default();
    let mut content_type = None;
    for (name, value) in &message.headers {
        if name == CONTENT_TYPE {
            content_type = Some(value.as_str());
        } else if let Some(attribute) = name.strip_prefix(CE_PREFIX) {
            headers.insert(
                format!("{AMQP_CE_PREFIX}{attribute}").into(),
                long_string(value),
            );
        } else {
            headers.insert(name.as_str().into(), long_string(value));
        }
    }
    if let Some(key) = &message.key {
        headers.insert(KEY.into(), long_string(key));
    }
    if let Some(attempts) = earlier_attempts {
        headers.insert(EARLIER_ATTEMPTS.into(), AMQPValue::LongUInt(attempts));
    }
    let properties = BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_headers(headers);
    match content_type {
        Some(content_type) => properties.with_content_type(content_type.into()),
        None => properties,
    }
}

/// The transport message in a delivery, and its attempt number (1 for the first delivery).
pub(super) fn message(properties: &BasicProperties, body: Vec<u8>) -> (Message, u32) {
    let mut message = Message::new(body);
    let mut headers = BTreeMap::new();
    let mut earlier_attempts = 0_u64;
    let mut deliveries = 0_u64;
    let table = properties.headers().clone().unwrap_or_default();
    for (name, value) in table.inner() {
        match name.as_str() {
            KEY => message.key = text(value),
            EARLIER_ATTEMPTS => earlier_attempts = number(value).unwrap_or(0),
            DELIVERY_COUNT => deliveries = number(value).unwrap_or(0),
            other if BROKER_HEADER_PREFIXES.iter().any(|p| other.starts_with(p)) => {}
            other => {
                let attribute = AMQP_CE_PREFIXES
                    .iter()
                    .find_map(|prefix| other.strip_prefix(prefix));
                let (name, value) = match attribute {
                    Some(attribute) => (
                        format!("{CE_PREFIX}{attribute}"),
                        attribute_text(attribute, value),
                    ),
                    None => (other.to_owned(), text(value)),
                };
                if let Some(value) = value {
                    headers.insert(name, value);
                }
            }
        }
    }
    if let Some(content_type) = properties.content_type() {
        headers.insert(CONTENT_TYPE.to_owned(), content_type.as_str().to_owned());
    }
    message.headers = headers;
    let attempt = earlier_attempts
        .saturating_add(deliveries)
        .saturating_add(1);
    (message, u32::try_from(attempt).unwrap_or(u32::MAX))
}

fn long_string(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.as_bytes().to_vec()))
}

/// A CloudEvents attribute's value as text: `time` given as an AMQP timestamp (seconds) or
/// as a number (milliseconds since the epoch, as AMQP 1.0 timestamps are) becomes RFC 3339.
fn attribute_text(attribute: &str, value: &AMQPValue) -> Option<String> {
    let time = match (attribute, value) {
        ("time", AMQPValue::Timestamp(seconds)) => i64::try_from(*seconds)
            .ok()
            .and_then(|s| DateTime::from_timestamp(s, 0)),
        ("time", value) => number(value)
            .and_then(|ms| i64::try_from(ms).ok())
            .and_then(DateTime::from_timestamp_millis),
        _ => None,
    };
    match time {
        Some(time) => Some(time.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        None => text(value),
    }
}

/// A header value as text; headers that other producers set as numbers or booleans included.
fn text(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        AMQPValue::Boolean(b) => Some(b.to_string()),
        other => number(other).map(|n| n.to_string()),
    }
}

/// A non-negative integer header value.
fn number(value: &AMQPValue) -> Option<u64> {
    match *value {
        AMQPValue::ShortShortUInt(n) => Some(n.into()),
        AMQPValue::ShortUInt(n) => Some(n.into()),
        AMQPValue::LongUInt(n) => Some(n.into()),
        AMQPValue::ShortShortInt(n) => u64::try_from(n).ok(),
        AMQPValue::ShortInt(n) => u64::try_from(n).ok(),
        AMQPValue::LongInt(n) => u64::try_from(n).ok(),
        AMQPValue::LongLongInt(n) => u64::try_from(n).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_headers_survive_the_round_trip() {
        let sent = Message::new(&b"{}"[..])
            .with_key("agg-1")
            .with_header("ce_id", "e-1")
            .with_header("x-greeting", "grüß dich ✓");
        let (received, attempt) = message(&properties(&sent, None), b"{}".to_vec());
        assert_eq!(received, sent);
        assert_eq!(attempt, 1);
    }

    #[test]
    fn cloudevents_attributes_follow_the_amqp_binding() {
        let sent = Message::new(&b"hi"[..])
            .with_header("ce_specversion", "1.0")
            .with_header("ce_id", "e-1")
            .with_header("content-type", "text/plain")
            .with_header("tenant_id", "acme");
        let props = properties(&sent, None);
        assert_eq!(
            props.content_type().as_ref().map(|c| c.as_str()),
            Some("text/plain")
        );
        let table = props.headers().clone().unwrap_or_default();
        let names: Vec<&str> = table.inner().keys().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            ["cloudEvents:id", "cloudEvents:specversion", "tenant_id"]
        );
        assert_eq!(message(&props, b"hi".to_vec()).0, sent);

        let mut other = FieldTable::default();
        other.insert("cloudEvents_id".into(), long_string("e-2"));
        other.insert("ce-source".into(), long_string("/py"));
        other.insert(
            "cloudEvents:time".into(),
            AMQPValue::LongLongInt(1_714_557_600_500),
        );
        let (received, _) = message(&BasicProperties::default().with_headers(other), Vec::new());
        assert_eq!(received.headers["ce_id"], "e-2");
        assert_eq!(received.headers["ce_source"], "/py");
        assert_eq!(received.headers["ce_time"], "2024-05-01T10:00:00.500Z");
    }

    #[test]
    fn attempts_add_earlier_attempts_and_the_queues_delivery_count() {
        let mut props = properties(&Message::new(&b""[..]), Some(2));
        let mut headers = props.headers().clone().unwrap_or_default();
        headers.insert(DELIVERY_COUNT.into(), AMQPValue::LongLongInt(1));
        headers.insert("x-death".into(), AMQPValue::Void);
        headers.insert("x-first-death-queue".into(), long_string("q.retry.20"));
        props = props.with_headers(headers);
        let (received, attempt) = message(&props, Vec::new());
        assert_eq!(attempt, 4);
        assert!(received.headers.is_empty(), "{:?}", received.headers);
    }
}
