//! A transport message as a Pub/Sub message (data, attributes, ordering key), and back, by
//! the CloudEvents Pub/Sub binding: each `ce_{name}` attribute header is the `ce-{name}`
//! attribute, and `content-type` is the `content-type` attribute.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use event_bus_core::Message;
use event_bus_core::dead_letter::{DeadLetterReason, headers};
use gcloud_googleapis::pubsub::v1::PubsubMessage;

/// Prefix of a CloudEvents attribute in the message's headers.
const CE_PREFIX: &str = "ce_";
/// Prefix of a CloudEvents attribute among Pub/Sub attributes.
const PUBSUB_CE_PREFIX: &str = "ce-";
/// The content type, as the message and Pub/Sub name it.
const CONTENT_TYPE: &str = "content-type";
/// Attribute carrying the message's key when it is not sent as the ordering key.
const KEY: &str = "x-event-bus-key";
/// Longest attribute value Pub/Sub accepts, in bytes.
const MAX_ATTRIBUTE_VALUE: usize = 1024;
/// Attributes Pub/Sub sets on a message its dead-letter policy forwarded.
const SOURCE_SUBSCRIPTION: &str = "CloudPubSubDeadLetterSourceSubscription";
const SOURCE_DELIVERY_COUNT: &str = "CloudPubSubDeadLetterSourceDeliveryCount";

/// The Pub/Sub message for `message`; its key is the ordering key when `ordering` is on.
/// Attribute values longer than Pub/Sub allows are cut at 1,024 bytes.
pub(super) fn to_pubsub(message: &Message, ordering: bool) -> PubsubMessage {
    let mut attributes: HashMap<String, String> = message
        .headers
        .iter()
        .map(|(name, value)| {
            let name = match name.strip_prefix(CE_PREFIX) {
                Some(attribute) => format!("{PUBSUB_CE_PREFIX}{attribute}"),
                None => name.clone(),
            };
            (name, truncated(value))
        })
        .collect();
    let mut ordering_key = String::new();
    if let Some(key) = &message.key {
        attributes.insert(KEY.to_owned(), truncated(key));
        if ordering {
            ordering_key = key.clone();
        }
    }
    PubsubMessage {
        data: message.payload.to_vec(),
        attributes,
        ordering_key,
        ..PubsubMessage::default()
    }
}

/// The transport message a Pub/Sub message carries.
pub(super) fn from_pubsub(message: &PubsubMessage) -> Message {
    let mut headers: std::collections::BTreeMap<String, String> = message
        .attributes
        .iter()
        .map(|(name, value)| {
            // The binding's attribute names are case-insensitive.
            let lower = name.to_ascii_lowercase();
            let name = match lower.strip_prefix(PUBSUB_CE_PREFIX) {
                Some(attribute) => format!("{CE_PREFIX}{attribute}"),
                None if lower == CONTENT_TYPE => lower,
                None => name.clone(),
            };
            (name, value.clone())
        })
        .collect();
    let key = headers
        .remove(KEY)
        .or_else(|| (!message.ordering_key.is_empty()).then(|| message.ordering_key.clone()));
    Message {
        key,
        headers,
        payload: message.data.clone().into(),
    }
}

/// When Pub/Sub's own dead-letter policy forwarded `message` (no bus reason header), adds the
/// bus's dead-letter headers from what Pub/Sub recorded and returns the source subscription
/// (a full name), whose topic the caller fills in as the original topic.
pub(super) fn mark_native_dead_letter(
    message: &mut Message,
    publish_time: Option<DateTime<Utc>>,
) -> Option<String> {
    if message.headers.contains_key(headers::REASON) {
        return None;
    }
    let source = message.headers.get(SOURCE_SUBSCRIPTION)?.clone();
    let attempts = message
        .headers
        .get(SOURCE_DELIVERY_COUNT)
        .cloned()
        .unwrap_or_default();
    let time = publish_time
        .unwrap_or_else(Utc::now)
        .to_rfc3339_opts(SecondsFormat::Millis, true);
    let short = source.rsplit('/').next().unwrap_or(&source).to_owned();
    let h = &mut message.headers;
    h.insert(
        headers::REASON.into(),
        DeadLetterReason::MaxAttemptsExceeded.as_str().into(),
    );
    h.insert(
        headers::ERROR.into(),
        format!("Pub/Sub's dead-letter policy forwarded it after {attempts} deliveries that were never settled"),
    );
    h.insert(headers::ATTEMPTS.into(), attempts);
    h.insert(headers::SUBSCRIPTION.into(), short);
    h.insert(headers::FIRST_FAILURE_AT.into(), time.clone());
    h.insert(headers::LAST_FAILURE_AT.into(), time);
    Some(source)
}

fn truncated(value: &str) -> String {
    if value.len() <= MAX_ATTRIBUTE_VALUE {
        return value.to_owned();
    }
    let mut end = MAX_ATTRIBUTE_VALUE;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_survives_the_round_trip() {
        let message = Message::new("{\"a\":1}")
            .with_key("user-1")
            .with_header("tenant_id", "acme")
            .with_header("x-greeting", "grüß dich");
        for ordering in [false, true] {
            let pubsub = to_pubsub(&message, ordering);
            assert_eq!(pubsub.ordering_key, if ordering { "user-1" } else { "" });
            assert_eq!(pubsub.attributes["tenant_id"], "acme");
            assert_eq!(from_pubsub(&pubsub), message);
        }
    }

    #[test]
    fn cloudevents_attributes_follow_the_pubsub_binding() {
        let message = Message::new("hi")
            .with_header("ce_id", "e-1")
            .with_header("content-type", "text/plain");
        let pubsub = to_pubsub(&message, false);
        assert_eq!(pubsub.attributes["ce-id"], "e-1");
        assert_eq!(pubsub.attributes["content-type"], "text/plain");
        assert!(!pubsub.attributes.contains_key("ce_id"));
        assert_eq!(from_pubsub(&pubsub), message);

        let mut foreign = pubsub.clone();
        foreign.attributes = HashMap::from([
            ("CE-ID".to_owned(), "e-2".to_owned()),
            (
                "Content-Type".to_owned(),
                "application/cloudevents+json".to_owned(),
            ),
        ]);
        let read = from_pubsub(&foreign);
        assert_eq!(read.headers["ce_id"], "e-2");
        assert_eq!(read.headers["content-type"], "application/cloudevents+json");
    }

    #[test]
    fn long_attribute_values_are_cut_on_a_character_boundary() {
        let message = Message::new("x").with_header("x-dead-letter-error", "é".repeat(600));
        let value = &to_pubsub(&message, false).attributes["x-dead-letter-error"];
        assert_eq!(value.len(), 1024);
    }

    #[test]
    fn a_natively_forwarded_message_gets_the_bus_headers() {
        let mut message = Message::new("x")
            .with_header(SOURCE_SUBSCRIPTION, "projects/p/subscriptions/s")
            .with_header(SOURCE_DELIVERY_COUNT, "7");
        let source = mark_native_dead_letter(&mut message, None);
        assert_eq!(source.as_deref(), Some("projects/p/subscriptions/s"));
        assert_eq!(message.headers[headers::REASON], "max-attempts-exceeded");
        assert_eq!(message.headers[headers::ATTEMPTS], "7");
        assert_eq!(message.headers[headers::SUBSCRIPTION], "s");
        let mut bus_letter = message.clone();
        assert_eq!(mark_native_dead_letter(&mut bus_letter, None), None);
    }
}
