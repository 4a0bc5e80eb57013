//! A message as stream entry fields: `payload`, optional `key`, and `h:{name}` per header.
//! Redis Streams has no CloudEvents binding; the headers follow the Kafka binding's names, so
//! a structured event has `h:content-type` = `application/cloudevents+json`, and a binary one
//! `h:ce_{name}` per attribute and `h:content-type` for its data.

use std::collections::HashMap;

use event_bus_core::Message;
use redis::Value;

const PAYLOAD: &str = "payload";
const KEY: &str = "key";
const HEADER: &str = "h:";

/// The fields of a stream entry carrying `message`.
pub(super) fn fields(message: &Message) -> Vec<(String, Vec<u8>)> {
    let mut fields = Vec::with_capacity(message.headers.len() + 2);
    fields.push((PAYLOAD.to_owned(), message.payload.to_vec()));
    if let Some(key) = &message.key {
        fields.push((KEY.to_owned(), key.clone().into_bytes()));
    }
    for (name, value) in &message.headers {
        fields.push((format!("{HEADER}{name}"), value.clone().into_bytes()));
    }
    fields
}

/// The message a stream entry carries; fields it does not know are ignored.
pub(super) fn message(fields: &HashMap<String, Value>) -> Message {
    let mut message = Message::default();
    for (field, value) in fields {
        let Value::BulkString(bytes) = value else {
            continue;
        };
        if field == PAYLOAD {
            message.payload = bytes.clone().into();
        } else if field == KEY {
            message.key = Some(String::from_utf8_lossy(bytes).into_owned());
        } else if let Some(name) = field.strip_prefix(HEADER) {
            message
                .headers
                .insert(name.to_owned(), String::from_utf8_lossy(bytes).into_owned());
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_round_trips_through_entry_fields() {
        let original = Message::new(vec![0, 159, 146, 150, b'{'])
            .with_key("agg-1")
            .with_header("x-greeting", "grüß dich")
            .with_header("h:tricky", "value");
        let stored: HashMap<String, Value> = fields(&original)
            .into_iter()
            .map(|(k, v)| (k, Value::BulkString(v)))
            .collect();
        assert_eq!(message(&stored), original);
    }
}
