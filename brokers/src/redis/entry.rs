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

/// Appends to `cmd` the fields of a stream entry carrying `message`.
pub(super) fn write_fields(cmd: &mut redis::Cmd, message: &Message) {
    cmd.arg(PAYLOAD).arg(message.payload.as_ref());
    if let Some(key) = &message.key {
        cmd.arg(KEY).arg(key);
    }
    for (name, value) in &message.headers {
        cmd.arg(format!("{HEADER}{name}")).arg(value);
    }
}

/// The message a stream entry carries; fields it does not know are ignored.
pub(super) fn message(fields: HashMap<String, Value>) -> Message {
    let mut message = Message::default();
    for (mut field, value) in fields {
        let Value::BulkString(bytes) = value else {
            continue;
        };
        if field == PAYLOAD {
            message.payload = bytes.into();
        } else if field == KEY {
            message.key = Some(text(bytes));
        } else if field.starts_with(HEADER) {
            field.replace_range(..HEADER.len(), "");
            message.headers.insert(field, text(bytes));
        }
    }
    message
}

/// The bytes as text, taken over without a copy when they are UTF-8.
fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
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
        let mut cmd = redis::cmd("XADD");
        write_fields(&mut cmd, &original);
        let args: Vec<Vec<u8>> = cmd
            .args_iter()
            .skip(1)
            .map(|arg| match arg {
                redis::Arg::Simple(bytes) => bytes.to_vec(),
                _ => unreachable!("XADD has only simple arguments"),
            })
            .collect();
        let stored: HashMap<String, Value> = args
            .chunks(2)
            .map(|pair| {
                let name = String::from_utf8(pair[0].clone()).unwrap();
                (name, Value::BulkString(pair[1].clone()))
            })
            .collect();
        assert_eq!(message(stored), original);
    }
}
