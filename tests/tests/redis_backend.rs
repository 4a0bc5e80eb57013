//! The Redis pieces outside the conformance suite, against the Redis server on 127.0.0.1:6379:
//! selection by EVENT_BUS_TYPE, channel mode, and the Redis dedup store.
#![cfg(feature = "redis")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use event_bus_brokers::redis::RedisDedupStore;
use event_bus_core::dead_letter::DeadLetter;
use event_bus_core::idempotency::{Claim, DedupStore};
use event_bus_core::{
    BusSettings, EventEnvelope, HandlerError, Recorder, RetryPolicy, SubscriptionConfig, handler_fn,
};

const URL: &str = "redis://127.0.0.1:6379";
const TIMEOUT: Duration = Duration::from_secs(30);
const LEASE: Duration = Duration::from_secs(30);

fn unique(name: &str) -> String {
    format!("evbus-test-{name}-{}", uuid::Uuid::now_v7().simple())
}

async fn bus(vars: &[(&str, &str)]) -> event_bus_core::EventBus {
    let prefix = unique("bus");
    let mut all = vec![
        ("EVENT_BUS_TYPE", "redis"),
        ("REDIS_EVENT_URL", URL),
        ("EVENT_BUS_TOPIC_PREFIX", prefix.as_str()),
    ];
    all.extend_from_slice(vars);
    let settings = BusSettings::from_vars(all.iter().copied()).expect("settings");
    event_bus_brokers::connect(settings).await.expect("connect")
}

#[tokio::test]
async fn event_bus_type_redis_selects_streams() {
    let bus = bus(&[]).await;
    assert_eq!(bus.broker().name(), "redis");
    let recorder = Recorder::new();
    bus.subscribe(
        bus.subscription("user.registered", "audit"),
        recorder.clone(),
    )
    .await
    .unwrap();
    let event =
        EventEnvelope::builder("user.registered", serde_json::json!({"name": "Zoë"})).build();
    bus.publish(&event).await.unwrap();
    assert_eq!(recorder.wait_for(1, TIMEOUT).await.unwrap()[0], event);
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error() {
    let settings = BusSettings::from_vars([
        ("EVENT_BUS_TYPE", "redis"),
        ("REDIS_EVENT_URL", "redis://127.0.0.1:1"),
    ])
    .unwrap();
    let error = event_bus_brokers::connect(settings)
        .await
        .err()
        .expect("nothing listens on port 1");
    assert!(
        error
            .to_string()
            .starts_with("could not connect the redis backend: redis backend:"),
        "{error}"
    );
}

#[tokio::test]
async fn channel_mode_delivers_to_every_subscriber_while_they_listen() {
    let channels = unique("channels-");
    let bus = bus(&[
        ("REDIS_TRANSPORT", "channels"),
        ("REDIS_CHANNEL_PREFIX", channels.as_str()),
    ])
    .await;
    assert_eq!(bus.broker().name(), "redis-channels");
    let (first, second) = (Recorder::new(), Recorder::new());
    bus.subscribe(bus.subscription("order.placed", "first"), first.clone())
        .await
        .unwrap();
    bus.subscribe(bus.subscription("order.placed", "second"), second.clone())
        .await
        .unwrap();
    let events: Vec<_> = (0..5)
        .map(|n| {
            EventEnvelope::builder("order.placed", serde_json::json!({"n": n}))
                .header("x-n", n.to_string())
                .build()
        })
        .collect();
    for event in &events {
        bus.publish(event).await.unwrap();
    }
    for recorder in [&first, &second] {
        let mut received = recorder.wait_for(5, TIMEOUT).await.unwrap();
        received.sort_by_key(|e| e.id.clone());
        assert_eq!(received, events);
    }
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_redis_dedup_store_claims_once_and_remembers_done_keys() {
    let store = RedisDedupStore::connect(URL, &unique("dedup"))
        .await
        .unwrap();
    assert_eq!(store.claim("k", LEASE).await.unwrap(), Claim::Acquired);
    assert_eq!(store.claim("k", LEASE).await.unwrap(), Claim::InProgress);
    store.release("k").await.unwrap();
    assert_eq!(store.claim("k", LEASE).await.unwrap(), Claim::Acquired);
    store.complete("k", Duration::from_secs(60)).await.unwrap();
    assert_eq!(store.claim("k", LEASE).await.unwrap(), Claim::Done);
    assert_eq!(store.claim("other", LEASE).await.unwrap(), Claim::Acquired);
}

#[tokio::test]
async fn dedup_keys_expire() {
    let store = RedisDedupStore::connect(URL, &unique("dedup"))
        .await
        .unwrap();
    store.claim("k", LEASE).await.unwrap();
    store
        .complete("k", Duration::from_millis(50))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while store.claim("k", LEASE).await.unwrap() != Claim::Acquired {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the done key never expired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn concurrent_claims_let_exactly_one_through() {
    let store = RedisDedupStore::connect(URL, &unique("dedup"))
        .await
        .unwrap();
    let claims = claim_concurrently(&store).await;
    assert_eq!(
        claims.iter().filter(|c| **c == Claim::Acquired).count(),
        1,
        "{claims:?}"
    );
}

async fn claim_concurrently(store: &RedisDedupStore) -> Vec<Claim> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let store = store.clone();
        tasks.spawn(async move { store.claim("contended", LEASE).await.unwrap() });
    }
    tasks.join_all().await
}

#[tokio::test]
async fn the_seeds_channel_prefix_alone_keeps_durable_streams() {
    let bus = bus(&[("REDIS_CHANNEL_PREFIX", "events")]).await;
    assert_eq!(bus.broker().name(), "redis");
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn channel_mode_retries_a_failing_handler_in_process_then_dead_letters_it() {
    let channels = unique("channels-");
    let bus = bus(&[
        ("REDIS_TRANSPORT", "channels"),
        ("REDIS_CHANNEL_PREFIX", channels.as_str()),
        ("DEAD_LETTER_MAX_RETRIES", "3"),
    ])
    .await;
    let quick = RetryPolicy {
        immediate_attempts: 0,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ..RetryPolicy::default()
    };
    // Dead letters go to a channel too: they are kept only if someone listens.
    let mut dead_letters = bus
        .broker()
        .subscribe(&SubscriptionConfig::new(
            bus.topics().dead_letter_topic(),
            "inspector",
        ))
        .await
        .unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let flaky = {
        let calls = Arc::clone(&calls);
        handler_fn(move |event: EventEnvelope| {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                match event.event_type.as_str() {
                    "order.placed" if call == 0 => Err(HandlerError::retryable("once")),
                    "order.placed" => Ok(()),
                    _ => Err(HandlerError::retryable("always")),
                }
            }
        })
    };
    let placed = bus
        .subscribe(
            bus.subscription("order.placed", "billing")
                .retry(quick.clone()),
            flaky.clone(),
        )
        .await
        .unwrap();
    let paid = bus
        .subscribe(
            bus.subscription("order.paid", "billing").retry(quick),
            flaky,
        )
        .await
        .unwrap();
    bus.publish(&EventEnvelope::builder("order.placed", serde_json::json!({})).build())
        .await
        .unwrap();
    let stats = placed
        .stats()
        .wait_until(TIMEOUT, |s| s.handled == 1)
        .await
        .unwrap();
    assert_eq!((stats.retried, stats.dead_lettered), (1, 0));

    let doomed = EventEnvelope::builder("order.paid", serde_json::json!({})).build();
    bus.publish(&doomed).await.unwrap();
    let stats = paid
        .stats()
        .wait_until(TIMEOUT, |s| s.dead_lettered == 1)
        .await
        .unwrap();
    assert_eq!(
        stats.retried, 2,
        "attempts 1 and 2 retried, 3 dead-lettered"
    );
    let letter = tokio::time::timeout(TIMEOUT, dead_letters.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let letter = DeadLetter::from_message(letter.message().clone());
    assert_eq!(letter.event_id, Some(doomed.id));
    assert_eq!(
        (letter.reason.as_str(), letter.attempts),
        ("max-attempts-exceeded", 3)
    );
    bus.shutdown().await.unwrap();
}
