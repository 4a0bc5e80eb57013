//! Cases about getting every event to the right consumers, intact and in order.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::ConformanceTarget;
use super::fixture::{Fixture, TIMEOUT, ids, publish_all};
use crate::handler::{HandlerError, handler_fn};
use crate::testing::Recorder;

/// 100 events published after subscribing arrive with payload and headers intact, unicode included.
pub async fn publish_then_subscribe_keeps_payload_and_headers(
    target: &(impl ConformanceTarget + ?Sized),
) {
    let fixture = Fixture::new(target);
    let bus = fixture.bus().await;
    let recorder = Recorder::new();
    bus.subscribe(fixture.subscription("intact.event", "g"), recorder.clone())
        .await
        .expect("subscribe");

    let published: Vec<_> = (0..100).map(|n| fixture.event("intact.event", n)).collect();
    publish_all(&bus, &published).await;

    let received = recorder
        .wait_for(100, TIMEOUT)
        .await
        .expect("all events arrive");
    let by_id: HashMap<_, _> = received.iter().map(|e| (e.id.clone(), e)).collect();
    for event in &published {
        assert_eq!(
            by_id.get(&event.id),
            Some(&event),
            "event {} arrived changed or not at all",
            event.id
        );
    }
    bus.shutdown().await.expect("shutdown");
}

/// Four publishers and three members of one group move 2000 events with none lost.
pub async fn concurrent_publishers_and_subscribers_lose_nothing(
    target: &(impl ConformanceTarget + ?Sized),
) {
    const PUBLISHERS: u64 = 4;
    const PER_PUBLISHER: u64 = 500;
    let fixture = Fixture::new(target);
    let recorder = Recorder::new();
    let mut consumers = Vec::new();
    for _ in 0..3 {
        let bus = fixture.bus().await;
        let config = fixture
            .subscription("load.event", "shared")
            .max_in_flight(32);
        bus.subscribe(config, recorder.clone())
            .await
            .expect("subscribe");
        consumers.push(bus);
    }

    let mut expected = HashSet::new();
    let mut publishers = Vec::new();
    for p in 0..PUBLISHERS {
        let events: Vec<_> = (0..PER_PUBLISHER)
            .map(|n| fixture.event("load.event", p * PER_PUBLISHER + n))
            .collect();
        expected.extend(ids(&events));
        let bus = fixture.bus().await;
        publishers.push(tokio::spawn(async move {
            publish_all(&bus, &events).await;
            bus.shutdown().await.expect("close publisher");
        }));
    }
    for publisher in publishers {
        publisher.await.expect("publisher task");
    }

    let received = recorder
        .wait_until(TIMEOUT, |events| ids(events).len() >= expected.len())
        .await
        .unwrap_or_else(|got| panic!("{got} deliveries, not all of {} events", expected.len()));
    assert_eq!(ids(&received), expected);
    for bus in consumers {
        bus.shutdown().await.expect("shutdown");
    }
}

/// Events published to several topics at once reach only their own topic's subscriber.
pub async fn topics_stay_isolated(target: &(impl ConformanceTarget + ?Sized)) {
    let fixture = Fixture::new(target);
    let bus = Arc::new(fixture.bus().await);
    let types = ["iso.alpha", "iso.beta", "iso.gamma", "iso.delta"];
    let mut recorders = Vec::new();
    for event_type in types {
        let recorder = Recorder::new();
        bus.subscribe(fixture.subscription(event_type, "g"), recorder.clone())
            .await
            .expect("subscribe");
        recorders.push(recorder);
    }
    let mut tasks = Vec::new();
    for event_type in types {
        let events: Vec<_> = (0..50).map(|n| fixture.event(event_type, n)).collect();
        let bus = Arc::clone(&bus);
        tasks.push(tokio::spawn(
            async move { publish_all(&bus, &events).await },
        ));
    }
    for task in tasks {
        task.await.expect("publisher task");
    }
    for (event_type, recorder) in types.iter().zip(&recorders) {
        let received = recorder
            .wait_for(50, TIMEOUT)
            .await
            .expect("every topic's events arrive");
        assert!(
            received.iter().all(|e| e.event_type == *event_type),
            "{event_type} received another topic's event"
        );
        assert_eq!(ids(&received).len(), 50);
    }
    bus.shutdown().await.expect("shutdown");
}

/// Two consumer groups of one topic each receive all 100 events.
pub async fn every_consumer_group_gets_every_event(target: &(impl ConformanceTarget + ?Sized)) {
    if !target.capabilities().consumer_groups {
        return eprintln!("skipped: the backend has no consumer groups");
    }
    let fixture = Fixture::new(target);
    let bus = fixture.bus().await;
    let (first, second) = (Recorder::new(), Recorder::new());
    bus.subscribe(fixture.subscription("fanout.event", "first"), first.clone())
        .await
        .expect("subscribe");
    bus.subscribe(
        fixture.subscription("fanout.event", "second"),
        second.clone(),
    )
    .await
    .expect("subscribe");

    let events: Vec<_> = (0..100).map(|n| fixture.event("fanout.event", n)).collect();
    publish_all(&bus, &events).await;

    for recorder in [&first, &second] {
        let received = recorder
            .wait_until(TIMEOUT, |e| ids(e).len() >= 100)
            .await
            .expect("every group gets everything");
        assert_eq!(ids(&received), ids(&events));
    }
    bus.shutdown().await.expect("shutdown");
}

/// A group subscribing after events were published still receives them.
pub async fn a_new_group_receives_earlier_events(target: &(impl ConformanceTarget + ?Sized)) {
    if !target.capabilities().new_subscriber_receives_old_messages {
        return eprintln!("skipped: the backend delivers only events published after subscribing");
    }
    let fixture = Fixture::new(target);
    let bus = fixture.bus().await;
    let events: Vec<_> = (0..10).map(|n| fixture.event("early.event", n)).collect();
    publish_all(&bus, &events).await;

    let recorder = Recorder::new();
    bus.subscribe(
        fixture.subscription("early.event", "late"),
        recorder.clone(),
    )
    .await
    .expect("subscribe");
    let received = recorder
        .wait_for(10, TIMEOUT)
        .await
        .expect("earlier events arrive");
    assert_eq!(ids(&received), ids(&events));
    bus.shutdown().await.expect("shutdown");
}

/// With ordering on, each aggregate's events are handled in publish order, even when some
/// fail once and are redelivered.
pub async fn per_key_order_is_kept(target: &(impl ConformanceTarget + ?Sized)) {
    const KEYS: u64 = 8;
    const PER_KEY: u64 = 40;
    if !target.capabilities().per_key_ordering {
        return eprintln!("skipped: the backend does not keep per-key order");
    }
    let fixture = Fixture::new(target);
    let bus = fixture.bus().await;
    let handled: Arc<Mutex<HashMap<String, Vec<u64>>>> = Arc::default();
    let failed_once: Arc<Mutex<HashSet<String>>> = Arc::default();
    let handler = {
        let handled = Arc::clone(&handled);
        handler_fn(move |event| {
            let (handled, failed_once) = (Arc::clone(&handled), Arc::clone(&failed_once));
            async move {
                if event.aggregate_version % 7 == 3
                    && failed_once.lock().unwrap().insert(event.id.clone())
                {
                    return Err(HandlerError::retryable(
                        "first attempt of every seventh event fails",
                    ));
                }
                handled
                    .lock()
                    .unwrap()
                    .entry(event.aggregate_id.clone())
                    .or_default()
                    .push(event.aggregate_version);
                Ok(())
            }
        })
    };
    let config = fixture
        .subscription("ordered.event", "g")
        .ordering(true)
        .max_in_flight(8);
    let subscription = bus.subscribe(config, handler).await.expect("subscribe");

    for version in 1..=PER_KEY {
        for key in 0..KEYS {
            let event = crate::envelope::EventEnvelope::builder(
                "ordered.event",
                serde_json::json!({"v": version}),
            )
            .aggregate("thing", format!("key-{key}"), version)
            .build();
            bus.publish(&event).await.expect("publish");
        }
    }
    subscription
        .stats()
        .wait_until(TIMEOUT, |s| s.handled >= KEYS * PER_KEY)
        .await
        .expect("every event handled");
    let expected: Vec<u64> = (1..=PER_KEY).collect();
    for (key, versions) in handled.lock().unwrap().iter() {
        assert_eq!(
            versions, &expected,
            "events of {key} were handled out of order"
        );
    }
    bus.shutdown().await.expect("shutdown");
}
