//! Replaying from PostgreSQL: by time range and type, into a handler and back onto Redis,
//! marked so side-effect handlers skip them.

mod common;

use std::sync::Arc;

use chrono::{Duration, Utc};
use event_bus_core::{EventEnvelope, Recorder};
use event_store::replay::{Replayer, skip_replays};
use event_store::store::{EventFilter, EventStore, ExpectedVersion, StreamId};

#[tokio::test]
async fn replays_a_time_range_of_one_type_in_batches_back_onto_redis() {
    let store = Arc::new(common::store(0).await);
    let base = Utc::now() - Duration::days(2);
    let event = |event_type: &str, hours: i64| {
        EventEnvelope::builder(event_type, serde_json::json!({ "hours": hours }))
            .timestamp(base + Duration::hours(hours))
            .build()
    };
    let events: Vec<_> = (0..10)
        .map(|h| {
            event(
                if h % 2 == 0 {
                    "order.placed"
                } else {
                    "order.paid"
                },
                h,
            )
        })
        .collect();
    store
        .append(
            &StreamId::new("order", "o-1"),
            ExpectedVersion::NoStream,
            events,
        )
        .await
        .unwrap();

    let filter = EventFilter::all().event_type("order.placed").between(
        Some(base + Duration::hours(2)),
        Some(base + Duration::hours(9)),
    );
    let replayer = Replayer::new(store.clone()).batch_size(2);
    assert_eq!(replayer.count(&filter, 0).await.unwrap(), 4);

    let into = Recorder::new();
    let mut batches = Vec::new();
    let done = replayer
        .replay_into(&filter, 0, &into, |p| batches.push(p.replayed))
        .await
        .unwrap();
    assert_eq!(done.replayed, 4);
    assert_eq!(batches, [2, 4, 4]);
    let hours: Vec<_> = into
        .events()
        .iter()
        .map(|e| e.payload["hours"].as_i64().unwrap())
        .collect();
    assert_eq!(hours, [2, 4, 6, 8]);
    assert!(into.events().iter().all(EventEnvelope::is_replay));

    let bus = common::redis_bus().await;
    let projection = Recorder::new();
    let saga = Recorder::new();
    bus.subscribe(
        bus.subscription("order.placed", "projection"),
        projection.clone(),
    )
    .await
    .unwrap();
    let saga_subscription = bus
        .subscribe(
            bus.subscription("order.placed", "saga"),
            skip_replays(saga.clone()),
        )
        .await
        .unwrap();
    let done = replayer
        .replay_to_bus(&filter, 0, &bus, |_| {})
        .await
        .unwrap();
    assert_eq!(done.replayed, 4);
    let received = projection.wait_for(4, common::TIMEOUT).await.unwrap();
    assert!(received.iter().all(EventEnvelope::is_replay));
    saga_subscription
        .stats()
        .wait_until(common::TIMEOUT, |s| s.handled == 4)
        .await
        .unwrap();
    assert!(
        saga.is_empty(),
        "the saga must not fire again for replayed events"
    );
    bus.shutdown().await.unwrap();
}
