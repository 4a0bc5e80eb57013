//! A handler's time limit (`WORKER_TIMEOUT`) and a subscription's concurrency
//! (`MAX_CONCURRENT_MESSAGES`), on the in-memory backend.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use event_bus_core::dead_letter::headers;
use event_bus_core::{
    BusSettings, EventBus, EventEnvelope, InMemoryBroker, RetryPolicy, handler_fn,
};

const TIMEOUT: Duration = Duration::from_secs(20);

fn event(n: u32) -> EventEnvelope {
    EventEnvelope::builder("order.placed", serde_json::json!({ "n": n }))
        .source("orders")
        .aggregate("order", format!("order-{n}"), 1)
        .build()
}

/// Counts its own drops: a handler future that is dropped before it finished was cancelled.
struct DropCounter(Arc<AtomicU32>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_hung_handler_is_cancelled_at_its_limit_retried_then_dead_lettered_as_timed_out() {
    let broker = InMemoryBroker::new();
    let settings =
        BusSettings::from_vars([("WORKER_TIMEOUT", "1"), ("DEAD_LETTER_MAX_RETRIES", "2")])
            .unwrap();
    let bus = EventBus::new(Arc::new(broker.clone()), settings);
    let (calls, cancelled) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let handler = {
        let (calls, cancelled) = (Arc::clone(&calls), Arc::clone(&cancelled));
        handler_fn(move |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            let guard = DropCounter(Arc::clone(&cancelled));
            async move {
                let _guard = guard;
                std::future::pending::<()>().await;
                Ok(())
            }
        })
    };
    let config = bus
        .subscription("order.placed", "billing")
        .retry(RetryPolicy {
            immediate_attempts: 1,
            ..RetryPolicy::default()
        });
    assert_eq!(config.handler_timeout, Some(Duration::from_secs(1)));
    let subscription = bus.subscribe(config, handler).await.unwrap();
    bus.publish(&event(1)).await.unwrap();

    let stats = subscription
        .stats()
        .wait_until(TIMEOUT, |s| s.dead_lettered == 1)
        .await
        .unwrap();
    assert_eq!(stats.retried, 1, "the first timeout is a retryable failure");
    assert_eq!(stats.handled, 0);
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one run per attempt");
    assert_eq!(
        cancelled.load(Ordering::SeqCst),
        2,
        "each run was cancelled"
    );
    let letters = broker.messages(bus.topics().dead_letter_topic());
    assert_eq!(letters.len(), 1);
    let letter = &letters[0].headers;
    assert_eq!(
        letter.get(headers::REASON).map(String::as_str),
        Some("max-attempts-exceeded")
    );
    let error = letter.get(headers::ERROR).cloned().unwrap_or_default();
    assert!(error.contains("timed out"), "{error}");
    assert_eq!(letter.get(headers::ATTEMPTS).map(String::as_str), Some("2"));
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn max_concurrent_messages_bounds_the_handlers_running_at_once() {
    let broker = InMemoryBroker::new();
    let settings = BusSettings::from_vars([("MAX_CONCURRENT_MESSAGES", "3")]).unwrap();
    let bus = EventBus::new(Arc::new(broker.clone()), settings);
    let (running, most) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let handler = {
        let (running, most) = (Arc::clone(&running), Arc::clone(&most));
        handler_fn(move |_| {
            let (running, most) = (Arc::clone(&running), Arc::clone(&most));
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }
        })
    };
    let config = bus.subscription("order.placed", "billing");
    assert_eq!(config.max_in_flight, 3);
    let subscription = bus.subscribe(config, handler).await.unwrap();
    for n in 0..12 {
        bus.publish(&event(n)).await.unwrap();
    }
    subscription
        .stats()
        .wait_until(TIMEOUT, |s| s.handled == 12)
        .await
        .unwrap();
    assert_eq!(most.load(Ordering::SeqCst), 3);
    bus.shutdown().await.unwrap();
}
