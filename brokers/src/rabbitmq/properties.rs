//! A transport message as AMQP properties and body, and back.

use std::collections::BTreeMap;

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
/// AMQP delivery mode of messages written to disk.
const PERSISTENT: u8 = 2;

/// Properties of a persistent message carrying `message`'s key and headers, plus the attempts
/// already made when it is a delayed retry.
pub(super) fn properties(message: &Message, earlier_attempts: Option<u32>) -> BasicProperties {
    let mut headers = FieldTable::default();
    for (name, value) in &message.headers {
        headers.insert(name.as_str().into(), long_string(value));
    }
    if let Some(key) = &message.key {
        headers.insert(KEY.into(), long_string(key));
    }
    if let Some(attempts) = earlier_attempts {
        headers.insert(EARLIER_ATTEMPTS.into(), AMQPValue::LongUInt(attempts));
    }
    BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_headers(headers)
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
                if let Some(value) = text(value) {
                    headers.insert(other.to_owned(), value);
                }
            }
        }
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
