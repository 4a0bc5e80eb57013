//! Redrive on the in-memory backend: a dead letter goes back only to the consumer group that
//! dead-lettered it; the other groups on the topic do not handle it again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use event_bus_core::dead_letter::{
    Action, DeadLetter, DeadLetterHandler, MemoryParkedStore, REDRIVE_SUBSCRIPTION_HEADER,
};
use event_bus_core::{
    BusSettings, EventBus, EventEnvelope, HandlerError, InMemoryBroker, SubscriptionConfig,
    handler_fn,
};

const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_redrive_reaches_only_the_group_that_dead_lettered_the_event() {
    let broker = InMemoryBroker::new();
    let settings = BusSettings::default();
    let (billing_calls, shipping_calls) =
        (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let billing = {
        let calls = Arc::clone(&billing_calls);
        handler_fn(move |_| {
            let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                if first {
                    Err(HandlerError::permanent("billing refused it"))
                } else {
                    Ok(())
                }
            }
        })
    };
    let shipping = {
        let calls = Arc::clone(&shipping_calls);
        handler_fn(move |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        })
    };
    // Each group in a process of its own, without shared dedup: nothing but the redrive's
    // address keeps shipping from handling the event again.
    let billing_bus = EventBus::new(Arc::new(broker.connect()), settings.clone());
    let shipping_bus =
        EventBus::new(Arc::new(broker.connect()), settings.clone()).with_dedup_store(None);
    let billing_config = billing_bus.subscription("order.placed", "billing");
    let billing_group = billing_config.consumer_group.clone();
    let billing_sub = billing_bus
        .subscribe(billing_config, billing)
        .await
        .unwrap();
    let shipping_sub = shipping_bus
        .subscribe(
            shipping_bus.subscription("order.placed", "shipping"),
            shipping,
        )
        .await
        .unwrap();
    let event = EventEnvelope::builder("order.placed", serde_json::json!({ "n": 1 }))
        .aggregate("order", "o-1", 1)
        .build();
    billing_bus.publish(&event).await.unwrap();
    billing_sub
        .stats()
        .wait_until(TIMEOUT, |s| s.dead_lettered == 1)
        .await
        .unwrap();
    shipping_sub
        .stats()
        .wait_until(TIMEOUT, |s| s.handled == 1)
        .await
        .unwrap();

    let dead_letters = DeadLetterHandler::new(
        Arc::new(broker.connect()),
        Arc::new(MemoryParkedStore::new()),
    )
    .policy(|_: &DeadLetter| Action::Retry);
    let dlq = SubscriptionConfig::new(billing_bus.topics().dead_letter_topic(), "dlq");
    let redriven = dead_letters
        .drain(&dlq, Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(redriven, 1);
    let topic = billing_bus.topics().topic("order.placed");
    let republished = broker.messages(&topic);
    assert_eq!(
        republished[1].headers.get(REDRIVE_SUBSCRIPTION_HEADER),
        Some(&billing_group)
    );

    billing_sub
        .stats()
        .wait_until(TIMEOUT, |s| s.handled == 1)
        .await
        .unwrap();
    let shipping_stats = shipping_sub
        .stats()
        .wait_until(TIMEOUT, |s| s.skipped == 1)
        .await
        .unwrap();
    assert_eq!(shipping_stats.handled, 1);
    assert_eq!(billing_calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        shipping_calls.load(Ordering::SeqCst),
        1,
        "shipping handled it once"
    );
    billing_bus.shutdown().await.unwrap();
    shipping_bus.shutdown().await.unwrap();
}
