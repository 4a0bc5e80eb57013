//! The outbox relay from PostgreSQL to Redis: a broker failure loses nothing, and a relay
//! started after a crash publishes what the previous one did not.

mod common;

use std::sync::Arc;

use event_bus_core::{EventEnvelope, Recorder};
use event_store::outbox::{Outbox, OutboxRelay};
use event_store::store::{ExpectedVersion, StreamId};
use event_store_postgres::PgEventStore;
use redis::AsyncCommands;

fn placed(n: u32) -> EventEnvelope {
    EventEnvelope::builder("order.placed", serde_json::json!({ "n": n })).build()
}

#[tokio::test]
async fn a_failing_broker_loses_nothing_and_rows_are_marked_only_after_confirmation() {
    let store = common::store(0).await;
    let bus = common::redis_bus().await;
    let topic = bus.topics().topic("order.placed");
    let mut redis = common::redis().await;
    // A plain string under the stream's key: Redis refuses every XADD to it (WRONGTYPE).
    let _: () = redis.set(&topic, "not a stream").await.unwrap();

    let stream = StreamId::new("order", "o-1");
    let stored = store
        .append_and_enqueue(
            &stream,
            ExpectedVersion::NoStream,
            (1..=3).map(placed).collect(),
        )
        .await
        .unwrap();

    let relay = OutboxRelay::for_bus(Arc::new(store.clone()), &bus);
    let report = relay.relay_once().await.unwrap();
    assert!(report.failed);
    assert_eq!(report.published, 0);
    let pending = store.pending(10).await.unwrap();
    assert_eq!(
        pending.len(),
        3,
        "nothing is marked published after a failure"
    );
    assert_eq!(pending[0].attempts, 1);
    assert!(
        pending[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("WRONGTYPE")
    );

    // The relay process "crashes"; the broker recovers; a new relay on a new connection takes over.
    drop(relay);
    let _: () = redis.del(&topic).await.unwrap();
    let restarted = PgEventStore::connect(&common::database_url(), store.schema().name())
        .await
        .unwrap();
    let relay = OutboxRelay::for_bus(Arc::new(restarted), &bus);
    let report = relay.relay_once().await.unwrap();
    assert_eq!((report.published, report.failed), (3, false));
    assert!(store.pending(10).await.unwrap().is_empty());
    assert_eq!(relay.relay_once().await.unwrap().published, 0);

    let recorder = Recorder::new();
    bus.subscribe(bus.subscription("order.placed", "audit"), recorder.clone())
        .await
        .unwrap();
    let received = recorder.wait_for(3, common::TIMEOUT).await.unwrap();
    let expected: Vec<_> = stored.events.iter().map(|e| e.envelope.clone()).collect();
    assert_eq!(received, expected);
    bus.shutdown().await.unwrap();
}
