//! Cases about failing handlers and bad input: retries, dead letters, panics, duplicates.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use chrono::DateTime;
use serde::{Deserialize, Serialize};

use super::ConformanceTarget;
use super::fixture::{Fixture, TIMEOUT, header_map, publish_all, take_messages};
use crate::dead_letter::headers;
use crate::envelope::{DomainEvent, EventEnvelope};
use crate::error::BusError;
use crate::handler::{HandlerError, handler_fn, typed};
use crate::message::Message;
use crate::testing::Recorder;

/// An event that always fails retryably is tried exactly `max attempts` times, then lands
/// in the dead-letter topic, untouched, with reason, error, attempts, origin and times.
pub async fn exhausted_retries_go_to_the_dead_letter_topic(
    target: &(impl ConformanceTarget + ?Sized),
) {
    let fixture = Fixture::new(target);
    let mut dead_letters = fixture.watch_dead_letters().await;
    let bus = fixture.bus().await;
    let calls = Arc::new(AtomicU32::new(0));
    let handler = {
        let calls = Arc::clone(&calls);
        handler_fn(move |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(HandlerError::retryable("downstream unavailable")) }
        })
    };
    let config = fixture.subscription("doomed.event", "g");
    let subscription = bus
        .subscribe(config.clone(), handler)
        .await
        .expect("subscribe");
    let event = fixture.event("doomed.event", 1);
    bus.publish(&event).await.expect("publish");

    let message = take_messages(dead_letters.as_mut(), 1).await.remove(0);
    subscription
        .stats()
        .wait_until(TIMEOUT, |s| s.dead_lettered == 1)
        .await
        .expect("counted");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "the handler runs once per allowed attempt"
    );
    assert_eq!(
        EventEnvelope::from_message(&message).expect("payload intact"),
        event
    );
    let h = header_map(&message);
    assert_eq!(h.get(headers::REASON), Some(&"max-attempts-exceeded"));
    assert_eq!(h.get(headers::ATTEMPTS), Some(&"3"));
    assert_eq!(h.get(headers::ORIGINAL_TOPIC), Some(&config.topic.as_str()));
    assert_eq!(
        h.get(headers::SUBSCRIPTION),
        Some(&config.consumer_group.as_str())
    );
    assert!(
        h[headers::ERROR].contains("downstream unavailable"),
        "error header: {}",
        h[headers::ERROR]
    );
    let first =
        DateTime::parse_from_rfc3339(h[headers::FIRST_FAILURE_AT]).expect("first failure time");
    let last =
        DateTime::parse_from_rfc3339(h[headers::LAST_FAILURE_AT]).expect("last failure time");
    assert!(
        first < last,
        "first failure {first} must precede last failure {last}"
    );
    dead_letters.close().await.expect("close");
    bus.shutdown().await.expect("shutdown");
}

#[derive(Serialize, Deserialize)]
struct Registered {
    user_id: String,
}

impl DomainEvent for Registered {
    const EVENT_TYPE: &'static str = "strict.registered";
    const AGGREGATE_TYPE: &'static str = "user";

    fn aggregate_id(&self) -> String {
        self.user_id.clone()
    }
}

/// A payload that is not an envelope, an oversize message, a payload that does not match
/// its schema and an unknown event type each go to the dead-letter topic on the first
/// attempt with their reason; a good event next to them is handled; an oversize publish is
/// refused with a typed error.
pub async fn bad_input_is_dead_lettered_at_once(target: &(impl ConformanceTarget + ?Sized)) {
    let fixture = Fixture::new(target);
    let mut dead_letters = fixture.watch_dead_letters().await;
    let bus = fixture.bus().await;
    let good = Recorder::new();
    let handler = {
        let good = good.clone();
        typed(move |_: Registered, envelope| {
            good.record(&envelope);
            async { Ok(()) }
        })
    };
    let subscription = bus
        .subscribe(fixture.subscription(Registered::EVENT_TYPE, "g"), handler)
        .await
        .expect("subscribe");
    let topic = fixture.topic(Registered::EVENT_TYPE);

    let valid = EventEnvelope::from_event(&Registered {
        user_id: "u-1".into(),
    })
    .expect("encode")
    .build();
    let wrong_schema =
        EventEnvelope::builder(Registered::EVENT_TYPE, serde_json::json!({"user_id": 42})).build();
    let unknown_type = EventEnvelope::builder("strict.unheard-of", serde_json::json!({})).build();
    let oversize = EventEnvelope::builder(
        Registered::EVENT_TYPE,
        serde_json::json!({"blob": "x".repeat(70_000)}),
    )
    .build();
    let refused = bus.publish(&oversize).await;
    assert!(
        matches!(refused, Err(BusError::MessageTooLarge { .. })),
        "oversize publish: {refused:?}"
    );

    bus.publish(&valid).await.expect("publish");
    bus.publish(&wrong_schema).await.expect("publish");
    bus.publish_to(&topic, &unknown_type)
        .await
        .expect("publish");
    let raw = fixture.broker().await;
    raw.publish(
        &topic,
        Message::new("{not json at all").with_header("x-origin", "hand-made"),
    )
    .await
    .expect("raw publish");
    raw.publish(&topic, oversize.to_message().expect("encode"))
        .await
        .expect("raw publish");

    let letters = take_messages(dead_letters.as_mut(), 4).await;
    good.wait_for(1, TIMEOUT)
        .await
        .expect("the valid event is handled");
    let mut reasons: Vec<_> = letters
        .iter()
        .map(|m| header_map(m)[headers::REASON].to_owned())
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "malformed-payload",
            "oversize",
            "permanent-failure",
            "permanent-failure"
        ]
    );
    assert!(
        letters
            .iter()
            .all(|m| header_map(m)[headers::ATTEMPTS] == "1"),
        "dead-lettered on the first attempt"
    );
    let malformed = letters
        .iter()
        .find(|m| header_map(m)[headers::REASON] == "malformed-payload")
        .expect("malformed");
    assert_eq!(
        malformed.payload.as_ref(),
        b"{not json at all",
        "the payload is kept as it was"
    );
    assert_eq!(
        malformed.headers.get("x-origin").map(String::as_str),
        Some("hand-made")
    );
    let errors: Vec<_> = letters
        .iter()
        .map(|m| header_map(m)[headers::ERROR].to_owned())
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("unknown event type `strict.unheard-of`")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("does not match its schema")),
        "{errors:?}"
    );
    assert_eq!(good.len(), 1);
    subscription
        .stats()
        .wait_until(TIMEOUT, |s| s.dead_lettered == 4 && s.handled == 1)
        .await
        .expect("counted");
    dead_letters.close().await.expect("close");
    bus.shutdown().await.expect("shutdown");
}

/// A handler that panics on each event's first attempt is caught, counted as a failure,
/// and the events are handled on redelivery by the same subscription.
pub async fn a_panicking_handler_is_a_counted_failure(target: &(impl ConformanceTarget + ?Sized)) {
    let fixture = Fixture::new(target);
    let bus = fixture.bus().await;
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let recorder = Recorder::new();
    let handler = {
        let recorder = recorder.clone();
        handler_fn(move |event| {
            let first_time = {
                let mut seen = seen.lock().unwrap();
                let count = seen.entry(event.id.clone()).or_default();
                *count += 1;
                *count == 1
            };
            let recorder = recorder.clone();
            async move {
                assert!(!first_time, "handler bug on first sight of {}", event.id);
                recorder.record(&event);
                Ok(())
            }
        })
    };
    let subscription = bus
        .subscribe(fixture.subscription("panicky.event", "g"), handler)
        .await
        .expect("subscribe");
    let events: Vec<_> = (0..5).map(|n| fixture.event("panicky.event", n)).collect();
    publish_all(&bus, &events).await;

    recorder
        .wait_for(5, TIMEOUT)
        .await
        .expect("handled after the panics");
    let stats = subscription
        .stats()
        .wait_until(TIMEOUT, |s| s.handled == 5)
        .await
        .expect("counted");
    assert_eq!(stats.failed, 5, "each panic counts as one failure");
    assert_eq!(stats.retried, 5);
    assert_eq!(stats.dead_lettered, 0);
    bus.shutdown().await.expect("shutdown");
}

/// Deliveries sharing an idempotency key (one event published three times, and two events
/// with an explicit shared key) reach the handler once per key.
pub async fn idempotency_key_duplicates_are_handled_once(
    target: &(impl ConformanceTarget + ?Sized),
) {
    let fixture = Fixture::new(target);
    let bus = fixture.bus().await;
    let calls: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let handler = {
        let calls = Arc::clone(&calls);
        handler_fn(move |event| {
            *calls
                .lock()
                .unwrap()
                .entry(event.idempotency_key.clone())
                .or_default() += 1;
            async { Ok(()) }
        })
    };
    let subscription = bus
        .subscribe(fixture.subscription("dedup.event", "g"), handler)
        .await
        .expect("subscribe");
    let repeated = fixture.event("dedup.event", 1);
    let keyed = |n| {
        EventEnvelope::builder("dedup.event", serde_json::json!({"n": n}))
            .idempotency_key("order-42:charge")
            .build()
    };
    let unique = fixture.event("dedup.event", 2);
    publish_all(
        &bus,
        &[
            repeated.clone(),
            keyed(1),
            repeated.clone(),
            keyed(2),
            repeated.clone(),
            unique.clone(),
        ],
    )
    .await;

    subscription
        .stats()
        .wait_until(TIMEOUT, |s| s.handled == 6)
        .await
        .expect("all six deliveries settled");
    let calls = calls.lock().unwrap().clone();
    let expected = HashMap::from([
        (repeated.idempotency_key.clone(), 1),
        ("order-42:charge".to_owned(), 1),
        (unique.idempotency_key.clone(), 1),
    ]);
    assert_eq!(calls, expected);
    bus.shutdown().await.expect("shutdown");
}
