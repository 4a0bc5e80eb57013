//! The first-failure time a dead letter reports comes from the message, not from the member
//! that gives up: carried in `x-failing-since` where a retry is a new copy, otherwise reckoned
//! from the attempt count and the retry schedule.

use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use event_bus_core::dead_letter::headers;
use event_bus_core::{
    BusSettings, EventBus, EventEnvelope, HandlerError, InMemoryBroker, Message, RetryPolicy,
    Subscriber, SubscriptionConfig, handler_fn,
};

const TIMEOUT: Duration = Duration::from_secs(20);

fn schedule() -> RetryPolicy {
    RetryPolicy {
        immediate_attempts: 0,
        initial_backoff: Duration::from_millis(20),
        multiplier: 2.0,
        max_backoff: Duration::from_secs(1),
        jitter: 0.0,
    }
}

/// Runs a handler that always fails with `failure` on `message`, and returns the dead letter.
async fn dead_letter_of(message: Message, failure: fn() -> HandlerError) -> Message {
    let broker = InMemoryBroker::new();
    let bus = EventBus::new(Arc::new(broker.clone()), BusSettings::default());
    let config = bus
        .subscription("order.placed", "billing")
        .retry(schedule())
        .max_delivery_attempts(3);
    let dead_letters = broker
        .subscribe(&SubscriptionConfig::new(
            bus.topics().dead_letter_topic(),
            "inspector",
        ))
        .await
        .unwrap();
    let handler = handler_fn(move |_: EventEnvelope| async move { Err(failure()) });
    bus.subscribe(config.clone(), handler).await.unwrap();
    bus.broker().publish(&config.topic, message).await.unwrap();

    let mut dead_letters = dead_letters;
    let delivery = tokio::time::timeout(TIMEOUT, dead_letters.next())
        .await
        .expect("a dead letter in time")
        .expect("open")
        .expect("received");
    let letter = delivery.message().clone();
    delivery.ack().await.unwrap();
    bus.shutdown().await.unwrap();
    letter
}

fn time(letter: &Message, header: &str) -> DateTime<chrono::FixedOffset> {
    DateTime::parse_from_rfc3339(&letter.headers[header]).expect(header)
}

fn order() -> EventEnvelope {
    EventEnvelope::builder("order.placed", serde_json::json!({ "n": 1 }))
        .source("orders")
        .build()
}

#[tokio::test]
async fn redelivered_in_place_the_first_failure_is_reckoned_from_the_schedule() {
    let letter = dead_letter_of(order().to_message().unwrap(), || {
        HandlerError::retryable("down")
    })
    .await;
    assert_eq!(letter.headers[headers::ATTEMPTS], "3");
    // Failures at attempts 1 and 2 were each followed by the schedule's delay: 20 ms, 40 ms.
    let apart = time(&letter, headers::LAST_FAILURE_AT) - time(&letter, headers::FIRST_FAILURE_AT);
    assert_eq!(apart.num_milliseconds(), 60, "{letter:?}");
    assert!(!letter.headers.contains_key(headers::FAILING_SINCE));
}

#[tokio::test]
async fn a_first_failure_carried_by_the_message_is_the_one_reported() {
    let since = "2026-01-02T03:04:05.678Z";
    let message = order()
        .to_message()
        .unwrap()
        .with_header(headers::FAILING_SINCE, since);
    let letter = dead_letter_of(message, || HandlerError::permanent("never")).await;
    assert_eq!(letter.headers[headers::REASON], "permanent-failure");
    assert_eq!(letter.headers[headers::FIRST_FAILURE_AT], since);
    assert!(!letter.headers.contains_key(headers::FAILING_SINCE));
}
