//! The envelope reads any valid CloudEvents 1.0 event, in either content mode, and what the
//! bus published before this format; it keeps what it does not know.

use event_bus_core::envelope::{
    ContentMode, EnvelopeError, WireError, content_mode, header_tenant,
};
use event_bus_core::{EventEnvelope, Message};
use serde_json::json;

fn structured(body: serde_json::Value) -> Message {
    Message::new(body.to_string()).with_header(
        "content-type",
        "application/cloudevents+json; charset=utf-8",
    )
}

#[test]
fn a_minimal_foreign_event_gets_the_documented_defaults() {
    let message = structured(json!({
        "specversion": "1.0", "id": "order-123", "source": "/orders", "type": "order.created"
    }));
    let event = EventEnvelope::from_message(&message).expect("a valid CloudEvent");
    assert_eq!(event.id, "order-123");
    assert_eq!(event.source, "/orders");
    assert_eq!(event.event_type, "order.created");
    assert_eq!(event.aggregate_id, "");
    assert_eq!(event.aggregate_type, "");
    assert_eq!(event.aggregate_version, 0);
    assert_eq!(event.schema_version, 1);
    assert_eq!(event.correlation_id, "order-123");
    assert_eq!(event.causation_id, None);
    assert_eq!(event.tenant_id, None);
    assert_eq!(event.idempotency_key, "ce:7:/orders:order-123");
    assert_eq!(event.payload, serde_json::Value::Null);
    assert_eq!(event.data_content_type(), "application/json");
}

#[test]
fn subject_tenant_and_unknown_extensions_are_read_and_kept() {
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let message = structured(json!({
        "specversion": "1.0", "id": "o-1", "source": "urn:shop", "type": "order.created",
        "subject": "order-1", "tenantid": "acme", "aggregateversion": "3",
        "traceparent": traceparent, "partitionkey": "p-7", "priority": 5,
        "datacontenttype": "application/json", "data": {"total": 12}
    }));
    let event = EventEnvelope::from_message(&message).expect("a valid CloudEvent");
    assert_eq!(event.aggregate_id, "order-1");
    assert_eq!(event.aggregate_version, 3);
    assert_eq!(event.tenant_id.as_deref(), Some("acme"));
    assert_eq!(event.payload["total"], 12);
    assert_eq!(event.extensions["traceparent"], traceparent);
    assert_eq!(event.extensions["priority"], 5);

    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(json["traceparent"], traceparent);
    assert_eq!(json["partitionkey"], "p-7");
    assert_eq!(json["priority"], 5);
    let keyless = structured(json!({
        "specversion": "1.0", "id": "o-2", "source": "urn:shop", "type": "order.created",
        "partitionkey": "p-7"
    }));
    let keyless = EventEnvelope::from_message(&keyless).unwrap();
    assert_eq!(
        keyless.to_message().unwrap().key.as_deref(),
        Some("p-7"),
        "without a subject, the partitionkey extension is the key"
    );
    let republished = EventEnvelope::from_message(&event.to_message().unwrap()).unwrap();
    assert_eq!(republished, event);

    let binary = event.to_message_in(ContentMode::Binary).unwrap();
    assert_eq!(binary.headers["ce_traceparent"], traceparent);
    assert_eq!(binary.headers["ce_priority"], "5");
    assert_eq!(binary.headers["ce_tenantid"], "acme");
    assert_eq!(binary.headers["tenant_id"], "acme");
    let decoded = EventEnvelope::from_message(&binary).unwrap();
    assert_eq!(decoded.extensions["traceparent"], traceparent);
    assert_eq!(
        decoded.extensions["priority"], "5",
        "binary mode carries text"
    );
}

#[test]
fn base64_and_non_json_data_reach_the_handler_as_bytes_with_their_content_type() {
    let message = structured(json!({
        "specversion": "1.0", "id": "img-1", "source": "/cameras", "type": "image.taken",
        "datacontenttype": "image/png", "data_base64": "iVBORw0KGgo="
    }));
    let event = EventEnvelope::from_message(&message).unwrap();
    assert_eq!(event.data_content_type(), "image/png");
    assert_eq!(&*event.data_bytes(), b"\x89PNG\r\n\x1a\n");
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(json["data_base64"], "iVBORw0KGgo=");
    assert!(json.get("data").is_none());

    let binary = event.to_message_in(ContentMode::Binary).unwrap();
    assert_eq!(binary.headers["content-type"], "image/png");
    assert_eq!(&binary.payload[..], b"\x89PNG\r\n\x1a\n");
    assert_eq!(EventEnvelope::from_message(&binary).unwrap(), event);

    let text = structured(json!({
        "specversion": "1.0", "id": "t-1", "source": "/notes", "type": "note.added",
        "datacontenttype": "text/plain", "data": "grüß dich"
    }));
    let event = EventEnvelope::from_message(&text).unwrap();
    assert_eq!(&*event.data_bytes(), "grüß dich".as_bytes());
}

#[test]
fn a_binary_mode_event_is_read_from_its_headers_and_body() {
    let message = Message::new("plain words")
        .with_header("ce_specversion", "1.0")
        .with_header("ce_id", "n-1")
        .with_header("ce_source", "/notes")
        .with_header("ce_type", "note.added")
        .with_header("ce_time", "2024-05-01T10:00:00.5Z")
        .with_header("ce_tenantid", "acme")
        .with_header("ce_partitionkey", "k")
        .with_header("content-type", "text/plain");
    assert_eq!(content_mode(&message), ContentMode::Binary);
    assert_eq!(header_tenant(&message), Some("acme"));
    let event = EventEnvelope::from_message(&message).unwrap();
    assert_eq!(event.id, "n-1");
    assert_eq!(event.tenant_id.as_deref(), Some("acme"));
    assert_eq!(
        event.timestamp.to_rfc3339(),
        "2024-05-01T10:00:00.500+00:00"
    );
    assert_eq!(event.data_content_type(), "text/plain");
    assert_eq!(&*event.data_bytes(), b"plain words");
    assert_eq!(event.extensions["partitionkey"], "k");

    let json = Message::new(r#"{"n":1}"#)
        .with_header("ce_specversion", "1.0")
        .with_header("ce_id", "n-2")
        .with_header("ce_source", "/n")
        .with_header("ce_type", "n")
        .with_header("content-type", "application/json");
    assert_eq!(EventEnvelope::from_message(&json).unwrap().payload["n"], 1);
}

#[test]
fn the_bus_own_events_round_trip_in_both_modes() {
    let event = EventEnvelope::builder("user.registered", json!({"email": "a@example.com"}))
        .source("user-service")
        .aggregate("user", "u-1", 4)
        .tenant_id("acme")
        .header("x-request", "r-1")
        .causation_id("cmd-9")
        .extension(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .build();
    for mode in [ContentMode::Structured, ContentMode::Binary] {
        let message = event.to_message_in(mode).unwrap();
        assert_eq!(content_mode(&message), mode);
        assert_eq!(message.key.as_deref(), Some("u-1"));
        assert_eq!(message.headers["tenant_id"], "acme");
        assert_eq!(
            EventEnvelope::from_message(&message).unwrap(),
            event,
            "{mode:?}"
        );
    }
    let structured = event.to_message().unwrap();
    assert_eq!(
        structured.headers["content-type"],
        "application/cloudevents+json"
    );
    assert!(
        structured
            .headers
            .keys()
            .all(|name| !name.starts_with("ce_")),
        "readers take a ce_ header for binary mode: {:?}",
        structured.headers
    );
    let binary = event.to_message_in(ContentMode::Binary).unwrap();
    assert_eq!(binary.headers["ce_type"], "user.registered");
    assert_eq!(binary.headers["ce_id"], event.id);
}

/// A message exactly as the bus published it before it followed the bindings: no content
/// type, `ce_id`/`ce_type`/`tenant_id` headers, every attribute in the body, an empty source.
#[test]
fn a_message_the_bus_published_before_still_decodes() {
    let body = r#"{"specversion":"1.0","id":"01938a2e-7c4b-7d52-9b1e-3f0a2c4d5e6f","type":"user.registered","source":"","subject":"u-1","aggregatetype":"user","aggregateversion":1,"schemaversion":2,"time":"2024-11-30T15:27:39.123456789Z","correlationid":"01938a2e-7c4b-7d52-9b1e-3f0a2c4d5e6f","causationid":"01938a2e-0000-7d52-9b1e-3f0a2c4d5e6f","tenantid":"acme","idempotencykey":"user.registered:acme:01938a2e-7c4b-7d52-9b1e-3f0a2c4d5e6f","headers":{"x-replayed":"true"},"data":{"user_id":"u-1"},"datacontenttype":"application/json"}"#;
    let message = Message::new(body)
        .with_key("u-1")
        .with_header("ce_id", "01938a2e-7c4b-7d52-9b1e-3f0a2c4d5e6f")
        .with_header("ce_type", "user.registered")
        .with_header("tenant_id", "acme");
    assert_eq!(content_mode(&message), ContentMode::Structured);
    let event = EventEnvelope::from_message(&message).expect("an old message decodes");
    assert_eq!(event.id, "01938a2e-7c4b-7d52-9b1e-3f0a2c4d5e6f");
    assert_eq!(event.source, "");
    assert_eq!(event.aggregate_id, "u-1");
    assert_eq!(event.aggregate_type, "user");
    assert_eq!(event.aggregate_version, 1);
    assert_eq!(event.schema_version, 2);
    assert_eq!(event.timestamp.timestamp_subsec_nanos(), 123_456_789);
    assert_eq!(event.correlation_id, event.id);
    assert_eq!(
        event.causation_id.as_deref(),
        Some("01938a2e-0000-7d52-9b1e-3f0a2c4d5e6f")
    );
    assert_eq!(event.tenant_id.as_deref(), Some("acme"));
    assert_eq!(
        event.idempotency_key,
        "user.registered:acme:01938a2e-7c4b-7d52-9b1e-3f0a2c4d5e6f"
    );
    assert!(event.is_replay());
    assert_eq!(event.payload["user_id"], "u-1");
    assert!(event.extensions.is_empty(), "{:?}", event.extensions);
}

#[test]
fn what_is_not_a_cloudevent_is_malformed_naming_why() {
    let missing = structured(json!({"specversion": "1.0", "id": "x", "type": "t"}));
    let error = EventEnvelope::from_message(&missing).unwrap_err();
    assert!(
        matches!(
            &error,
            WireError::Malformed(EnvelopeError::Missing("source"))
        ),
        "{error}"
    );
    assert!(error.to_string().contains("`source`"), "{error}");

    let empty_id = structured(json!({"specversion": "1.0", "id": "", "source": "s", "type": "t"}));
    assert!(matches!(
        EventEnvelope::from_message(&empty_id),
        Err(WireError::Malformed(EnvelopeError::Empty("id")))
    ));
    let bad_version = structured(
        json!({"specversion": "1.0", "id": "x", "source": "s", "type": "t", "aggregateversion": "three"}),
    );
    assert!(matches!(
        EventEnvelope::from_message(&bad_version),
        Err(WireError::Malformed(EnvelopeError::Invalid {
            name: "aggregateversion",
            ..
        }))
    ));
    let array = structured(json!([1, 2]));
    assert!(EventEnvelope::from_message(&array).is_err());
}
