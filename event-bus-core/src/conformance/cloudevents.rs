//! CloudEvents interoperability: any valid CloudEvent, in either content mode, reaches the
//! handler through the backend, and so do messages in the bus's format from before.

use std::collections::HashMap;

use super::ConformanceTarget;
use super::fixture::{Fixture, TIMEOUT, take_messages};
use crate::envelope::{ContentMode, EventEnvelope, content_mode};
use crate::message::Message;
use crate::testing::Recorder;
use crate::transport::SubscriptionConfig;

/// A minimal foreign structured event, a foreign binary-mode event with text data and
/// extensions, a message as the bus published it before, and the bus's own event published in
/// binary mode all reach the handler, read as the README's envelope section says; the
/// backend carries the binary-mode headers and content type unchanged.
pub async fn any_cloudevent_in_either_mode_is_handled(target: &(impl ConformanceTarget + ?Sized)) {
    let mut fixture = Fixture::new(target);
    fixture.settings.content_mode = ContentMode::Binary;
    let topic = fixture.topic("interop.event");
    let mut raw = fixture
        .subscribe_raw(&SubscriptionConfig::new(
            &topic,
            format!("{}-raw", fixture.settings.subscription_prefix),
        ))
        .await;
    let bus = fixture.bus().await;
    let recorder = Recorder::new();
    let subscription = bus
        .subscribe(fixture.subscription("interop.event", "h"), recorder.clone())
        .await
        .expect("subscribe");

    let foreign_structured = Message::new(
        r#"{"specversion":"1.0","id":"order-123","source":"/orders","type":"interop.event","data":{"total":12}}"#,
    )
    .with_header("content-type", "application/cloudevents+json; charset=utf-8");
    let foreign_binary = Message::new("grüß dich ✓")
        .with_key("note-1")
        .with_header("ce_specversion", "1.0")
        .with_header("ce_id", "note-1")
        .with_header("ce_source", "urn:notes")
        .with_header("ce_type", "interop.event")
        .with_header("ce_subject", "note-1")
        .with_header(
            "ce_traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .with_header("content-type", "text/plain; charset=utf-8");
    let old_format = Message::new(
        r#"{"specversion":"1.0","id":"01938a2e-7c4b-7d52-9b1e-3f0a2c4d5e6f","type":"interop.event","source":"","subject":"u-1","aggregatetype":"user","aggregateversion":1,"schemaversion":1,"time":"2024-11-30T15:27:39.123456789Z","correlationid":"01938a2e-7c4b-7d52-9b1e-3f0a2c4d5e6f","idempotencykey":"interop.event::01938a2e-7c4b-7d52-9b1e-3f0a2c4d5e6f","data":{"user_id":"u-1"},"datacontenttype":"application/json"}"#,
    )
    .with_key("u-1")
    .with_header("ce_id", "01938a2e-7c4b-7d52-9b1e-3f0a2c4d5e6f")
    .with_header("ce_type", "interop.event");
    let broker = fixture.broker().await;
    for message in [&foreign_structured, &foreign_binary, &old_format] {
        broker
            .publish(&topic, message.clone())
            .await
            .expect("publish raw");
    }
    let own = fixture.event("interop.event", 1);
    bus.publish(&own).await.expect("publish in binary mode");

    let handled: HashMap<String, EventEnvelope> = recorder
        .wait_for(4, TIMEOUT)
        .await
        .expect("all four handled")
        .into_iter()
        .map(|e| (e.id.clone(), e))
        .collect();
    let structured = &handled["order-123"];
    assert_eq!(structured.source, "/orders");
    assert_eq!(structured.payload["total"], 12);
    assert_eq!(structured.idempotency_key, "ce:7:/orders:order-123");
    let binary = &handled["note-1"];
    assert_eq!(binary.aggregate_id, "note-1");
    assert_eq!(binary.data_content_type(), "text/plain; charset=utf-8");
    assert_eq!(&*binary.data_bytes(), "grüß dich ✓".as_bytes());
    assert!(binary.extensions.contains_key("traceparent"));
    let old = &handled["01938a2e-7c4b-7d52-9b1e-3f0a2c4d5e6f"];
    assert_eq!(
        (old.aggregate_type.as_str(), old.aggregate_version),
        ("user", 1)
    );
    assert_eq!(old.payload["user_id"], "u-1");
    assert_eq!(handled[&own.id], own);
    let stats = subscription.stats().snapshot();
    assert_eq!(stats.dead_lettered, 0, "{stats}");

    let carried: HashMap<String, Message> = take_messages(raw.as_mut(), 4)
        .await
        .into_iter()
        .map(|m| (EventEnvelope::from_message(&m).expect("an event").id, m))
        .collect();
    let binary = &carried["note-1"];
    assert_eq!(content_mode(binary), ContentMode::Binary);
    assert_eq!(binary.headers, foreign_binary.headers);
    assert_eq!(binary.payload, foreign_binary.payload);
    let own_message = &carried[&own.id];
    assert_eq!(content_mode(own_message), ContentMode::Binary);
    assert_eq!(own_message.headers["ce_source"], "conformance");
    assert_eq!(content_mode(&carried["order-123"]), ContentMode::Structured);
}

/// A tenant subscription handles an event whose tenant only the event names (`tenantid` in a
/// structured body, or a binary-mode `ce_tenantid`, no `tenant_id` attribute), and another
/// tenant's subscription does not.
pub async fn a_tenant_named_only_in_the_event_is_routed(
    target: &(impl ConformanceTarget + ?Sized),
) {
    let fixture = Fixture::new(target);
    let topic = fixture.topic("tenant.body");
    let bus = fixture.bus().await;
    let (acme, globex) = (Recorder::new(), Recorder::new());
    let acme_subscription = bus
        .subscribe(
            fixture.subscription("tenant.body", "h").tenant("acme"),
            acme.clone(),
        )
        .await
        .expect("subscribe acme");
    let globex_subscription = bus
        .subscribe(
            fixture.subscription("tenant.body", "h").tenant("globex"),
            globex.clone(),
        )
        .await
        .expect("subscribe globex");

    let body_only = Message::new(
        r#"{"specversion":"1.0","id":"acme-1","source":"/py","type":"tenant.body","tenantid":"acme","data":{}}"#,
    )
    .with_header("content-type", "application/cloudevents+json");
    let binary_only = Message::new("{}")
        .with_header("ce_specversion", "1.0")
        .with_header("ce_id", "globex-1")
        .with_header("ce_source", "/py")
        .with_header("ce_type", "tenant.body")
        .with_header("ce_tenantid", "globex")
        .with_header("content-type", "application/json");
    let broker = fixture.broker().await;
    broker.publish(&topic, body_only).await.expect("publish");
    broker.publish(&topic, binary_only).await.expect("publish");

    let by_acme = acme
        .wait_for(1, TIMEOUT)
        .await
        .expect("acme handles its own");
    let by_globex = globex
        .wait_for(1, TIMEOUT)
        .await
        .expect("globex handles its own");
    assert_eq!(by_acme[0].id, "acme-1");
    assert_eq!(by_globex[0].id, "globex-1");
    for subscription in [&acme_subscription, &globex_subscription] {
        let stats = subscription.stats().snapshot();
        assert_eq!(stats.dead_lettered, 0, "{stats}");
    }
    let ids = |recorder: &Recorder| {
        recorder
            .events()
            .into_iter()
            .map(|e| e.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&acme), ["acme-1"]);
    assert_eq!(ids(&globex), ["globex-1"]);
}
