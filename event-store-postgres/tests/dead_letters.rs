//! The dead-letter handler on Redis with parked dead letters in PostgreSQL: retry, discard and
//! park per event, redrive of a parked one, statistics.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_bus_core::dead_letter::{
    Action, DeadLetter, DeadLetterFilter, DeadLetterHandler, ParkedStore,
};
use event_bus_core::{EventEnvelope, HandlerError, Recorder, SubscriptionConfig, handler_fn};

fn action_of(letter: &DeadLetter) -> Action {
    let envelope = EventEnvelope::from_message(&letter.message).expect("an envelope");
    match envelope.payload["action"].as_str() {
        Some("retry") => Action::Retry,
        Some("discard") => Action::Discard,
        _ => Action::Park,
    }
}

#[tokio::test]
async fn dead_letters_are_retried_discarded_or_parked_per_event() {
    let store = common::store(0).await;
    let parked = Arc::new(store.parked_store());
    let bus = common::redis_bus().await;

    // The handler fails each event permanently the first time it sees it, then succeeds.
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let handled = Recorder::new();
    let handler = {
        let (seen, handled) = (seen.clone(), handled.clone());
        handler_fn(move |event: EventEnvelope| {
            let first_time = seen.lock().unwrap().insert(event.id.clone());
            let handled = handled.clone();
            async move {
                if first_time {
                    return Err(HandlerError::permanent("first attempt fails"));
                }
                handled.record(&event);
                Ok(())
            }
        })
    };
    let subscription = bus
        .subscribe(bus.subscription("payment.requested", "charge"), handler)
        .await
        .unwrap();
    let events: Vec<_> = ["retry", "discard", "park"]
        .iter()
        .map(|action| {
            EventEnvelope::builder("payment.requested", serde_json::json!({ "action": action }))
                .build()
        })
        .collect();
    for event in &events {
        bus.publish(event).await.unwrap();
    }
    subscription
        .stats()
        .wait_until(common::TIMEOUT, |s| s.dead_lettered == 3)
        .await
        .unwrap();

    let dead_letters = DeadLetterHandler::new(bus.broker().clone(), parked.clone())
        .policy(action_of)
        .max_retries(bus.settings().dead_letter_max_redrives);
    let config = SubscriptionConfig::new(bus.topics().dead_letter_topic(), "dead-letter-handler");
    let drained = dead_letters
        .drain(&config, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(drained, 3);

    let stats = dead_letters.stats();
    assert_eq!(
        (stats.total, stats.retried, stats.discarded, stats.parked),
        (3, 1, 1, 1)
    );
    assert_eq!(stats.by_reason["permanent-failure"], 3);
    assert_eq!(stats.by_event_type["payment.requested"], 3);
    assert_eq!(stats.by_topic[&bus.topics().topic("payment.requested")], 3);
    assert!(stats.oldest_failure_at.is_some());

    // The retried event went back to its topic and was handled this time.
    let retried = handled.wait_for(1, common::TIMEOUT).await.unwrap();
    assert_eq!(retried[0].id, events[0].id);

    let parked_letters = parked.list(&DeadLetterFilter::default(), 10).await.unwrap();
    assert_eq!(parked_letters.len(), 1);
    let letter = &parked_letters[0];
    assert_eq!(letter.event_id, Some(events[2].id.clone()));
    assert_eq!(letter.reason, "permanent-failure");
    assert_eq!(
        letter.subscription,
        bus.subscription("payment.requested", "charge")
            .consumer_group
    );
    assert_eq!(parked.get(letter.id).await.unwrap().as_ref(), Some(letter));
    let by_reason = DeadLetterFilter {
        reason: Some("oversize".into()),
        ..DeadLetterFilter::default()
    };
    assert!(parked.list(&by_reason, 10).await.unwrap().is_empty());
    assert_eq!(
        parked
            .stats(&DeadLetterFilter::default())
            .await
            .unwrap()
            .parked,
        1
    );

    // A person redrives the parked one.
    dead_letters.redrive_parked(letter.id).await.unwrap();
    let handled_now = handled.wait_for(2, common::TIMEOUT).await.unwrap();
    assert_eq!(handled_now[1].id, events[2].id);
    assert!(parked.get(letter.id).await.unwrap().is_none());
    assert_eq!(handled.len(), 2, "the discarded event is never handled");
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn retention_deletes_parked_dead_letters_received_before_its_cutoff() {
    let store = common::store(0).await;
    let pg: Arc<dyn ParkedStore> = Arc::new(store.parked_store());
    let memory: Arc<dyn ParkedStore> =
        Arc::new(event_bus_core::dead_letter::MemoryParkedStore::new());
    for parked in [pg, memory] {
        let letter = |days_ago: i64| {
            let event = EventEnvelope::builder("payment.requested", serde_json::json!({})).build();
            let mut letter = DeadLetter::from_message(event.to_message().unwrap());
            letter.received_at = chrono::Utc::now() - chrono::Duration::days(days_ago);
            letter
        };
        let (old, recent) = (letter(40), letter(2));
        parked.park(&old).await.unwrap();
        parked.park(&recent).await.unwrap();
        let report =
            event_store::store::RetentionJob::new(30, event_store::store::RetentionMode::Delete)
                .with_parked(parked.clone())
                .run(&store)
                .await
                .unwrap();
        assert_eq!(report.parked_expired, 1);
        assert!(parked.get(old.id).await.unwrap().is_none());
        assert!(parked.get(recent.id).await.unwrap().is_some());
    }
}
