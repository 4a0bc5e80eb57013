//! The behaviour every event store must show, as test cases a backend runs against its real
//! server with [`event_store_tests!`](crate::event_store_tests).

use std::sync::Arc;

use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::outbox::Outbox;
use event_bus_core::envelope::EventEnvelope;

use super::{
    EventFilter, EventStore, EventStoreExt, ExpectedVersion, RetentionJob, RetentionMode,
    StoreError, StreamId,
};

/// A store under test: an event store with an outbox.
pub trait TestStore: EventStore + Outbox + 'static {}
impl<T: EventStore + Outbox + 'static> TestStore for T {}

/// A unique stream of aggregate type `counter`.
pub fn counter() -> StreamId {
    StreamId::new("counter", uuid::Uuid::now_v7().to_string())
}

/// `count` events `counter.added` adding 1, 2, 3, …
pub fn added(count: u64) -> Vec<EventEnvelope> {
    (1..=count)
        .map(|n| EventEnvelope::builder("counter.added", serde_json::json!({ "by": n })).build())
        .collect()
}

/// The state the cases rebuild: a running total and the events folded into it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Total {
    /// Sum of the `by` fields.
    pub sum: u64,
    /// Events folded.
    pub count: u64,
}

/// Folds one `counter.added` event.
pub fn add(total: Total, event: &EventEnvelope) -> Total {
    Total {
        sum: total.sum + event.payload["by"].as_u64().unwrap_or(0),
        count: total.count + 1,
    }
}

/// Appends stamp versions 1..n and the stream, and reads back from any version.
pub async fn append_and_read_a_stream(store: Arc<dyn TestStore>) {
    let stream = counter();
    let outcome = store
        .append(&stream, ExpectedVersion::NoStream, added(3))
        .await
        .unwrap();
    assert_eq!(outcome.version, 3);
    let versions: Vec<u64> = outcome
        .events
        .iter()
        .map(|e| e.envelope.aggregate_version)
        .collect();
    assert_eq!(versions, [1, 2, 3]);
    assert!(
        outcome
            .events
            .windows(2)
            .all(|w| w[0].position < w[1].position)
    );
    store
        .append(&stream, ExpectedVersion::Exact(3), added(2))
        .await
        .unwrap();
    assert_eq!(store.stream_version(&stream).await.unwrap(), 5);
    let tail = store.read_stream(&stream, 3, None).await.unwrap();
    assert_eq!(tail.len(), 3);
    assert_eq!(tail[0].envelope.aggregate_version, 3);
    assert_eq!(tail[0].envelope.aggregate_id, stream.aggregate_id);
    assert_eq!(tail[0].envelope.aggregate_type, "counter");
    assert_eq!(tail[0].envelope.payload["by"], 3);
    let page = store.read_stream(&stream, 1, Some(2)).await.unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0].envelope, outcome.events[0].envelope);
    assert!(
        store
            .read_stream(&counter(), 1, None)
            .await
            .unwrap()
            .is_empty()
    );
}

/// An append at a stale version fails with the typed error and writes nothing.
pub async fn a_conflicting_append_writes_nothing(store: Arc<dyn TestStore>) {
    let stream = counter();
    store
        .append(&stream, ExpectedVersion::NoStream, added(2))
        .await
        .unwrap();
    let before = store.stats().await.unwrap();
    let error = store
        .append(&stream, ExpectedVersion::Exact(1), added(3))
        .await
        .unwrap_err();
    match error {
        StoreError::Concurrency {
            stream: ref s,
            expected,
            actual,
        } => {
            assert_eq!(*s, stream);
            assert_eq!(expected, ExpectedVersion::Exact(1));
            assert_eq!(actual, 2);
        }
        other => panic!("expected a concurrency error, got {other}"),
    }
    let error = store
        .append(&stream, ExpectedVersion::NoStream, added(1))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::Concurrency { actual: 2, .. }),
        "{error}"
    );
    assert_eq!(store.stream_version(&stream).await.unwrap(), 2);
    assert_eq!(store.read_stream(&stream, 1, None).await.unwrap().len(), 2);
    assert_eq!(store.stats().await.unwrap().events, before.events);
    store
        .append(&stream, ExpectedVersion::Any, added(1))
        .await
        .unwrap();
    assert_eq!(store.stream_version(&stream).await.unwrap(), 3);
}

/// Two writers append at the same expected version at once: exactly one wins, every round.
pub async fn concurrent_appends_at_one_version_have_one_winner(store: Arc<dyn TestStore>) {
    let stream = counter();
    for round in 0..20u64 {
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let (store, stream, barrier) =
                    (Arc::clone(&store), stream.clone(), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    store
                        .append(&stream, ExpectedVersion::Exact(round * 2), added(2))
                        .await
                })
            })
            .collect();
        let mut wins = 0;
        for writer in writers {
            match writer.await.unwrap() {
                Ok(outcome) => {
                    wins += 1;
                    assert_eq!(outcome.version, round * 2 + 2);
                }
                Err(StoreError::Concurrency { .. }) => {}
                Err(other) => panic!("round {round}: unexpected error {other}"),
            }
        }
        assert_eq!(wins, 1, "round {round}");
    }
    let events = store.read_stream(&stream, 1, None).await.unwrap();
    let versions: Vec<u64> = events
        .iter()
        .map(|e| e.envelope.aggregate_version)
        .collect();
    assert_eq!(versions, (1..=40).collect::<Vec<_>>());
}

/// Store-wide reads are in position order and filter by time, type and aggregate.
pub async fn read_all_filters_in_position_order(store: Arc<dyn TestStore>) {
    let (first, second) = (
        counter(),
        StreamId::new("ledger", uuid::Uuid::now_v7().to_string()),
    );
    let base = Utc::now() - Duration::hours(1);
    let at = |minutes: i64, event_type: &str| {
        EventEnvelope::builder(event_type, serde_json::json!({ "by": minutes }))
            .timestamp(base + Duration::minutes(minutes))
            .build()
    };
    let start = store.stats().await.unwrap().last_position;
    store
        .append(
            &first,
            ExpectedVersion::NoStream,
            vec![at(1, "counter.added"), at(2, "counter.reset")],
        )
        .await
        .unwrap();
    store
        .append(
            &second,
            ExpectedVersion::NoStream,
            vec![at(3, "ledger.booked")],
        )
        .await
        .unwrap();
    store
        .append(
            &first,
            ExpectedVersion::Exact(2),
            vec![at(4, "counter.added")],
        )
        .await
        .unwrap();
    let ids = [first.aggregate_id.clone(), second.aggregate_id.clone()];
    let store_ref = store.as_ref();
    let mine = async |filter: EventFilter| -> Vec<i64> {
        let events = store_ref.read_all(&filter, start, 1000).await.unwrap();
        assert!(events.windows(2).all(|w| w[0].position < w[1].position));
        events
            .into_iter()
            .filter(|e| ids.contains(&e.envelope.aggregate_id))
            .map(|e| e.envelope.payload["by"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(mine(EventFilter::all()).await, [1, 2, 3, 4]);
    assert_eq!(
        mine(EventFilter::all().event_type("counter.added")).await,
        [1, 4]
    );
    assert_eq!(
        mine(
            EventFilter::all()
                .event_type("counter.reset")
                .event_type("ledger.booked")
        )
        .await,
        [2, 3]
    );
    assert_eq!(mine(EventFilter::all().aggregate_type("ledger")).await, [3]);
    assert_eq!(
        mine(EventFilter::all().aggregate_id(first.aggregate_id.clone())).await,
        [1, 2, 4]
    );
    let window = EventFilter::all().between(
        Some(base + Duration::minutes(2)),
        Some(base + Duration::minutes(4)),
    );
    assert_eq!(mine(window).await, [2, 3]);
    let paged = store.read_all(&EventFilter::all(), start, 2).await.unwrap();
    assert_eq!(paged.len(), 2);
    let rest = store
        .read_all(&EventFilter::all(), paged[1].position, 1000)
        .await
        .unwrap();
    assert!(rest.iter().all(|e| e.position > paged[1].position));
}

/// Rebuilding a state saves a snapshot after the interval and starts from it the next time,
/// with the same result as folding every event.
pub async fn reconstruct_starts_from_the_latest_snapshot(store: Arc<dyn TestStore>) {
    let interval = store.snapshot_interval();
    assert!(
        interval > 0 && interval < 50,
        "the case needs an interval below 50"
    );
    let stream = counter();
    store
        .append(&stream, ExpectedVersion::NoStream, added(50))
        .await
        .unwrap();
    let first = store
        .reconstruct_state(&stream, add, Total::default())
        .await
        .unwrap();
    assert_eq!(
        first.state,
        Total {
            sum: 1275,
            count: 50
        }
    );
    assert_eq!(first.version, 50);
    assert_eq!(first.snapshot_version, None);
    assert!(first.snapshot_saved);
    assert_eq!(
        store
            .latest_snapshot(&stream)
            .await
            .unwrap()
            .unwrap()
            .version,
        50
    );

    store
        .append(&stream, ExpectedVersion::Exact(50), added(3))
        .await
        .unwrap();
    let second = store
        .reconstruct_state(&stream, add, Total::default())
        .await
        .unwrap();
    assert_eq!(second.snapshot_version, Some(50));
    assert_eq!(second.events_applied, 3);
    assert!(
        !second.snapshot_saved,
        "3 events are fewer than the interval"
    );
    assert_eq!(
        second.state,
        Total {
            sum: 1275 + 6,
            count: 53
        }
    );
    let empty = store
        .reconstruct_state(&counter(), add, Total::default())
        .await
        .unwrap();
    assert_eq!((empty.state, empty.version), (Total::default(), 0));
}

/// A snapshot that no longer decodes is ignored, not fatal.
pub async fn an_undecodable_snapshot_is_ignored(store: Arc<dyn TestStore>) {
    let stream = counter();
    store
        .append(&stream, ExpectedVersion::NoStream, added(4))
        .await
        .unwrap();
    store
        .save_snapshot(super::Snapshot {
            stream: stream.clone(),
            version: 2,
            state: serde_json::json!("not a total"),
            taken_at: Utc::now(),
        })
        .await
        .unwrap();
    let rebuilt = store
        .reconstruct_state(&stream, add, Total::default())
        .await
        .unwrap();
    assert_eq!(rebuilt.state, Total { sum: 10, count: 4 });
    assert_eq!(rebuilt.snapshot_version, None);
}

/// Retention archives or deletes old events; stream versions stay, so appends still check.
pub async fn retention_expires_old_events_and_keeps_versions(store: Arc<dyn TestStore>) {
    let stream = counter();
    let old = |n: u64| {
        EventEnvelope::builder("counter.added", serde_json::json!({ "by": n }))
            .timestamp(Utc::now() - Duration::days(40))
            .build()
    };
    store
        .append(&stream, ExpectedVersion::NoStream, vec![old(1), old(2)])
        .await
        .unwrap();
    store
        .append(&stream, ExpectedVersion::Exact(2), added(1))
        .await
        .unwrap();
    let report = RetentionJob::new(30, RetentionMode::Archive)
        .run(store.as_ref())
        .await
        .unwrap();
    assert!(report.expired >= 2);
    let left = store.read_stream(&stream, 1, None).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].envelope.aggregate_version, 3);
    assert!(store.stats().await.unwrap().archived >= 2);
    let error = store
        .append(&stream, ExpectedVersion::Exact(1), added(1))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::Concurrency { actual: 3, .. }),
        "{error}"
    );
    store
        .append(&stream, ExpectedVersion::Exact(3), vec![old(4)])
        .await
        .unwrap();
    RetentionJob::new(30, RetentionMode::Delete)
        .run(store.as_ref())
        .await
        .unwrap();
    assert_eq!(store.stream_version(&stream).await.unwrap(), 4);
    assert_eq!(store.read_stream(&stream, 1, None).await.unwrap().len(), 1);
}

/// Retention deletes the snapshots taken before its cutoff and keeps the newer ones.
pub async fn retention_expires_old_snapshots(store: Arc<dyn TestStore>) {
    let (old, fresh) = (counter(), counter());
    for (stream, taken_at) in [
        (&old, Utc::now() - Duration::days(40)),
        (&fresh, Utc::now() - Duration::days(1)),
    ] {
        store
            .save_snapshot(super::Snapshot {
                stream: stream.clone(),
                version: 1,
                state: serde_json::json!({ "sum": 1, "count": 1 }),
                taken_at,
            })
            .await
            .unwrap();
    }
    let report = RetentionJob::new(30, RetentionMode::Archive)
        .run(store.as_ref())
        .await
        .unwrap();
    assert!(report.snapshots_expired >= 1);
    assert_eq!(report.parked_expired, 0, "no parked store was given");
    assert_eq!(store.latest_snapshot(&old).await.unwrap(), None);
    assert!(store.latest_snapshot(&fresh).await.unwrap().is_some());
}

/// The outbox enqueues exactly what an append stored, nothing for a failed append, and
/// forgets entries once they are marked published.
pub async fn the_outbox_enqueues_with_the_append(store: Arc<dyn TestStore>) {
    let stream = counter();
    let already = store.pending(10_000).await.unwrap().len();
    let outcome = store
        .append_and_enqueue(&stream, ExpectedVersion::NoStream, added(3))
        .await
        .unwrap();
    let error = store
        .append_and_enqueue(&stream, ExpectedVersion::NoStream, added(5))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Concurrency { .. }), "{error}");
    let pending: Vec<_> = store
        .pending(10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.envelope.aggregate_id == stream.aggregate_id)
        .collect();
    assert_eq!(pending.len(), 3);
    let stored: Vec<_> = outcome.events.iter().map(|e| e.envelope.clone()).collect();
    let queued: Vec<_> = pending.iter().map(|e| e.envelope.clone()).collect();
    assert_eq!(queued, stored);
    store
        .record_failure(pending[0].id, "broker down")
        .await
        .unwrap();
    let retried = store.pending(10_000).await.unwrap();
    let first = retried.iter().find(|e| e.id == pending[0].id).unwrap();
    assert_eq!(
        (first.attempts, first.last_error.as_deref()),
        (1, Some("broker down"))
    );
    let ids: Vec<u64> = pending.iter().map(|e| e.id).collect();
    store.mark_published(&ids).await.unwrap();
    assert_eq!(store.pending(10_000).await.unwrap().len(), already);
    assert_eq!(store.stats().await.unwrap().outbox_pending, already as u64);
}

/// Runs every case of the event-store suite as its own test. `$make` is an async function
/// taking the snapshot interval (the suite uses 10) and returning a fresh store.
#[macro_export]
macro_rules! event_store_tests {
    ($make:path) => {
        $crate::event_store_tests!(@cases $make;
            append_and_read_a_stream,
            a_conflicting_append_writes_nothing,
            concurrent_appends_at_one_version_have_one_winner,
            read_all_filters_in_position_order,
            reconstruct_starts_from_the_latest_snapshot,
            an_undecodable_snapshot_is_ignored,
            retention_expires_old_events_and_keeps_versions,
            retention_expires_old_snapshots,
            the_outbox_enqueues_with_the_append,
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store = $make(10).await;
                $crate::store::suite::$case(std::sync::Arc::new(store)).await;
            }
        )*
    };
}
