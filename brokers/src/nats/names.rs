//! JetStream names for the bus's names: a topic's stream (also its subject) and a consumer
//! group's durable consumer.

use std::fmt::Write;

/// The stream of `topic`, which is also the stream's only subject.
pub(super) fn stream(topic: &str) -> String {
    encode(topic)
}

/// The durable consumer of consumer group `group`.
pub(super) fn consumer(group: &str) -> String {
    encode(group)
}

/// ASCII letters, digits and `-` stay; every other byte becomes `_XX` (upper-case hex), so
/// distinct names stay distinct and the result is a valid stream, consumer and subject token.
fn encode(name: &str) -> String {
    let mut encoded = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "_{byte:02X}");
        }
    }
    if encoded.is_empty() {
        encoded.push('_');
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_names_stay_and_others_are_escaped_without_collisions() {
        assert_eq!(stream("events-user-registered"), "events-user-registered");
        assert_eq!(stream("a.b c*>/ü_"), "a_2Eb_20c_2A_3E_2F_C3_BC_5F");
        assert_ne!(stream("a_2E"), stream("a.")); // `_` itself is escaped
        assert_eq!(consumer("svc-sub-order-placed"), "svc-sub-order-placed");
        assert_eq!(consumer(""), "_");
    }
}
