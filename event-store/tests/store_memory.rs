//! The event-store suite, the outbox relay, replay marking and the dead-letter handler's retry
//! limit on the in-memory store and broker.

use std::sync::Arc;

use event_bus_core::dead_letter::headers;
use event_bus_core::dead_letter::{
    Action, DeadLetter, DeadLetterHandler, MemoryParkedStore, ParkedStore,
};
use event_bus_core::dead_letter::{DeadLetterFilter, REDRIVES_HEADER};
use event_bus_core::{EventEnvelope, Handler, InMemoryBroker, Publisher};
use event_bus_core::{Recorder, TopicNames};
use event_store::MemoryEventStore;
use event_store::outbox::{Outbox, OutboxRelay};
use event_store::replay::skip_replays;
use event_store::store::{ExpectedVersion, StreamId};

async fn memory_store(snapshot_interval: u64) -> MemoryEventStore {
    MemoryEventStore::new(snapshot_interval)
}

event_store::event_store_tests!(memory_store);

#[tokio::test]
async fn the_relay_keeps_entries_until_a_publisher_confirms_them() {
    let store = MemoryEventStore::new(0);
    let events: Vec<_> = (0..3)
        .map(|n| EventEnvelope::builder("order.placed", serde_json::json!({ "n": n })).build())
        .collect();
    store
        .append_and_enqueue(
            &StreamId::new("order", "o-1"),
            ExpectedVersion::NoStream,
            events,
        )
        .await
        .unwrap();
    let broker = InMemoryBroker::new();
    let topics = TopicNames::new("events", "events");
    let closed = broker.connect();
    closed.close().await.unwrap();
    let failing = OutboxRelay::new(Arc::new(store.clone()), Arc::new(closed), topics.clone());
    let report = failing.relay_once().await.unwrap();
    assert!(report.failed);
    assert_eq!(store.pending(10).await.unwrap().len(), 3);

    let relay = OutboxRelay::new(Arc::new(store.clone()), Arc::new(broker.connect()), topics);
    assert_eq!(relay.relay_once().await.unwrap().published, 3);
    assert!(store.pending(10).await.unwrap().is_empty());
    let published = broker.messages("events-order-placed");
    let ns: Vec<_> = published
        .iter()
        .map(|m| {
            EventEnvelope::from_message(m).unwrap().payload["n"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(ns, [0, 1, 2]);
}

#[tokio::test]
async fn skip_replays_passes_new_events_and_holds_back_replays_unless_allowed() {
    let saga = Recorder::new();
    let guarded = skip_replays(saga.clone());
    let fresh = EventEnvelope::builder("order.placed", serde_json::json!({})).build();
    let replayed = fresh.clone().into_replay();
    assert!(!fresh.is_replay() && replayed.is_replay());
    guarded.handle(&fresh).await.unwrap();
    guarded.handle(&replayed).await.unwrap();
    assert_eq!(saga.len(), 1);
    skip_replays(saga.clone())
        .allow_replays(true)
        .handle(&replayed)
        .await
        .unwrap();
    assert_eq!(saga.len(), 2);
}

#[tokio::test]
async fn a_retry_beyond_the_limit_or_without_a_topic_is_parked() {
    let broker = InMemoryBroker::new();
    let parked = Arc::new(MemoryParkedStore::new());
    let handler = DeadLetterHandler::new(Arc::new(broker.clone()), parked.clone())
        .policy(|_: &DeadLetter| Action::Retry)
        .max_retries(2);
    let event = EventEnvelope::builder("order.placed", serde_json::json!({})).build();
    let message = |redrives: u32, topic: &str| {
        event
            .to_message()
            .unwrap()
            .with_header(headers::REASON, "max-attempts-exceeded")
            .with_header(headers::ORIGINAL_TOPIC, topic)
            .with_header(REDRIVES_HEADER, redrives.to_string())
    };
    let first = handler
        .process(DeadLetter::from_message(message(1, "orders")))
        .await
        .unwrap();
    assert_eq!(first, Action::Retry);
    let republished = &broker.messages("orders")[0];
    assert_eq!(republished.headers[REDRIVES_HEADER], "2");
    assert!(!republished.headers.contains_key(headers::REASON));
    assert_eq!(republished.payload, event.to_message().unwrap().payload);

    let exhausted = handler
        .process(DeadLetter::from_message(message(2, "orders")))
        .await
        .unwrap();
    assert_eq!(exhausted, Action::Park);
    let nowhere = handler
        .process(DeadLetter::from_message(message(0, "")))
        .await
        .unwrap();
    assert_eq!(nowhere, Action::Park);
    assert_eq!(
        parked
            .list(&DeadLetterFilter::default(), 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(broker.messages("orders").len(), 1);
    let stats = handler.stats();
    assert_eq!((stats.retried, stats.parked), (1, 2));
    assert_eq!(stats.by_reason["max-attempts-exceeded"], 3);
}
