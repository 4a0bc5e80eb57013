//! Bus behaviour beyond the conformance suite, on the in-memory backend: what happens
//! without a dead-letter topic, and the harness helpers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use event_bus_core::{
    BusSettings, EventBus, EventEnvelope, HandlerError, InMemoryBroker, Message, Publisher,
    Recorder, RetryPolicy, handler_fn,
};

const TIMEOUT: Duration = Duration::from_secs(10);

fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        immediate_attempts: 0,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        ..RetryPolicy::default()
    }
}

fn event(n: u32) -> EventEnvelope {
    EventEnvelope::builder("order.placed", serde_json::json!({ "n": n }))
        .source("orders")
        .aggregate("order", format!("order-{n}"), 1)
        .build()
}

#[tokio::test]
async fn without_a_dead_letter_topic_a_failing_event_is_retried_not_dropped() {
    let broker = InMemoryBroker::new();
    let bus = EventBus::new(Arc::new(broker.clone()), BusSettings::default());
    let calls = Arc::new(AtomicU32::new(0));
    let handler = {
        let calls = Arc::clone(&calls);
        handler_fn(move |_| {
            let attempt = calls.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if attempt < 8 {
                    Err(HandlerError::permanent("refused"))
                } else {
                    Ok(())
                }
            }
        })
    };
    let mut config = bus
        .subscription("order.placed", "billing")
        .retry(quick_retry())
        .max_delivery_attempts(2);
    config.dead_letter_topic = None;
    let subscription = bus.subscribe(config, handler).await.unwrap();
    bus.publish(&event(1)).await.unwrap();

    let stats = subscription
        .stats()
        .wait_until(TIMEOUT, |s| s.handled == 1)
        .await
        .unwrap();
    assert_eq!(stats.dead_lettered, 0);
    assert_eq!(stats.retried, 7);
    assert!(broker.messages(bus.topics().dead_letter_topic()).is_empty());
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_harness_waits_for_published_messages_and_reports_backlog() {
    let broker = InMemoryBroker::new();
    let bus = EventBus::new(Arc::new(broker.clone()), BusSettings::default());
    let topic = bus.topics().topic("order.placed");
    let publisher = tokio::spawn({
        let bus = EventBus::new(Arc::new(broker.connect()), BusSettings::default());
        async move {
            for n in 0..3 {
                bus.publish(&event(n)).await.unwrap();
            }
        }
    });
    let messages = broker
        .wait_for_messages(&topic, 3, TIMEOUT)
        .await
        .expect("three messages");
    publisher.await.unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(broker.backlog(&topic, "nobody-yet"), 3);
    assert!(
        broker
            .wait_for_messages(&topic, 4, Duration::from_millis(20))
            .await
            .is_none()
    );

    let recorder = Recorder::new();
    let config = bus.subscription("order.placed", "audit");
    let group = config.consumer_group.clone();
    let subscription = bus.subscribe(config, recorder.clone()).await.unwrap();
    subscription
        .stats()
        .wait_until(TIMEOUT, |s| s.handled == 3)
        .await
        .unwrap();
    assert_eq!(broker.backlog(&topic, &group), 0);
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_open_circuit_delays_events_without_dead_lettering_them() {
    use event_bus_core::handler::{CircuitBreakerLayer, CircuitState};
    use tower_layer::Layer;

    let broker = InMemoryBroker::new();
    let bus = EventBus::new(Arc::new(broker.clone()), BusSettings::default());
    let breaker = CircuitBreakerLayer::new(1, Duration::from_millis(200));
    let calls = Arc::new(AtomicU32::new(0));
    let handler = {
        let calls = Arc::clone(&calls);
        handler_fn(move |_| {
            let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                if first {
                    Err(HandlerError::retryable("downstream unavailable"))
                } else {
                    Ok(())
                }
            }
        })
    };
    let config = bus
        .subscription("order.placed", "billing")
        .retry(quick_retry())
        .max_delivery_attempts(2);
    let subscription = bus.subscribe(config, breaker.layer(handler)).await.unwrap();
    for n in 0..5 {
        bus.publish(&event(n)).await.unwrap();
    }

    let stats = subscription
        .stats()
        .wait_until(TIMEOUT, |s| s.handled == 5)
        .await
        .unwrap();
    assert_eq!(
        stats.dead_lettered, 0,
        "waiting for the circuit is no attempt: {stats}"
    );
    assert_eq!(stats.failed, 1, "{stats}");
    assert!(
        stats.retried >= 2,
        "the failed event and the ones arriving while open wait: {stats}"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        6,
        "the handler is not called while the circuit is open"
    );
    assert_eq!(breaker.state(), CircuitState::Closed);
    assert!(broker.messages(bus.topics().dead_letter_topic()).is_empty());
    bus.shutdown().await.unwrap();
}

#[test]
fn a_tenant_subscription_filters_in_a_group_of_its_own() {
    let bus = EventBus::new(Arc::new(InMemoryBroker::new()), BusSettings::default());
    let shared = bus.subscription("order.placed", "billing");
    let acme = bus.tenant_subscription("order.placed", "billing", "acme");
    assert_eq!(acme.tenant.as_deref(), Some("acme"));
    assert_eq!(acme.topic, shared.topic);
    assert_eq!(
        acme.consumer_group,
        format!("{}-tenant-acme", shared.consumer_group)
    );
    assert_eq!(acme.dead_letter_topic, shared.dead_letter_topic);
}

#[tokio::test]
async fn a_duplicate_held_by_another_member_is_deferred_not_dead_lettered() {
    let broker = InMemoryBroker::new();
    let store: Arc<dyn event_bus_core::DedupStore> =
        Arc::new(event_bus_core::MemoryDedupStore::new());
    let settings = BusSettings::from_vars([("EVENT_BUS_ACK_DEADLINE_SECONDS", "1")]).unwrap();
    let members: Vec<EventBus> = (0..2)
        .map(|_| {
            EventBus::new(Arc::new(broker.connect()), settings.clone())
                .with_dedup_store(Some(Arc::clone(&store)))
        })
        .collect();
    let calls = Arc::new(AtomicU32::new(0));
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let handler = {
        let (calls, release) = (Arc::clone(&calls), Arc::clone(&release));
        handler_fn(move |_| {
            let (calls, release) = (Arc::clone(&calls), Arc::clone(&release));
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                let _permit = release.acquire().await.expect("open");
                Ok(())
            }
        })
    };
    let mut subscriptions = Vec::new();
    for bus in &members {
        let config = bus
            .subscription("order.placed", "billing")
            .max_delivery_attempts(1);
        subscriptions.push(bus.subscribe(config, handler.clone()).await.unwrap());
    }
    let event = event(1);
    members[0].publish(&event).await.unwrap();
    members[1].publish(&event).await.unwrap();

    // The second copy finds the first one's claim: with one attempt allowed, counting that as
    // a failure would dead-letter it at once.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while subscriptions
        .iter()
        .map(|s| s.stats().snapshot().retried)
        .sum::<u64>()
        == 0
    {
        assert!(tokio::time::Instant::now() < deadline, "no deferral seen");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    release.add_permits(10);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while broker.backlog(
        &members[0].topics().topic("order.placed"),
        &subscriptions_group(&members[0]),
    ) > 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "both copies are settled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the key is handled once");
    assert!(
        broker
            .messages(members[0].topics().dead_letter_topic())
            .is_empty()
    );
    for bus in members {
        bus.shutdown().await.unwrap();
    }
}

fn subscriptions_group(bus: &EventBus) -> String {
    bus.subscription("order.placed", "billing").consumer_group
}

#[tokio::test]
async fn an_ephemeral_group_is_removed_when_its_subscription_stops() {
    let broker = InMemoryBroker::new();
    let bus = EventBus::new(Arc::new(broker.clone()), BusSettings::default());
    let durable = bus.subscription("order.placed", "billing");
    let topic = durable.topic.clone();
    let ephemeral = bus.subscription("order.placed", "replies-1").ephemeral();
    let (durable_group, ephemeral_group) = (
        durable.consumer_group.clone(),
        ephemeral.consumer_group.clone(),
    );
    bus.subscribe(durable, Recorder::new()).await.unwrap();
    let recorder = Recorder::new();
    bus.subscribe(ephemeral, recorder.clone()).await.unwrap();
    bus.publish(&event(1)).await.unwrap();
    recorder.wait_for(1, TIMEOUT).await.unwrap();
    assert_eq!(
        broker.consumer_groups(&topic),
        [durable_group.clone(), ephemeral_group]
    );
    bus.shutdown().await.unwrap();
    assert_eq!(broker.consumer_groups(&topic), [durable_group]);
}

#[tokio::test]
async fn a_tenant_subscription_skips_another_tenants_oversize_message_without_dead_lettering() {
    let broker = InMemoryBroker::new();
    let publisher = EventBus::new(Arc::new(broker.connect()), BusSettings::default());
    let consumer_settings =
        BusSettings::from_vars([("EVENT_BUS_MAX_MESSAGE_BYTES", "2000")]).unwrap();
    let consumer = EventBus::new(Arc::new(broker.clone()), consumer_settings);
    let recorder = Recorder::new();
    let subscription = consumer
        .subscribe(
            consumer.tenant_subscription("order.placed", "billing", "acme"),
            recorder.clone(),
        )
        .await
        .unwrap();
    let big = EventEnvelope::builder(
        "order.placed",
        serde_json::json!({ "pad": "x".repeat(5000) }),
    )
    .tenant_id("globex")
    .build();
    let small = EventEnvelope::builder("order.placed", serde_json::json!({ "n": 1 }))
        .tenant_id("acme")
        .build();
    publisher.publish(&big).await.unwrap();
    publisher.publish(&small).await.unwrap();
    let stats = subscription
        .stats()
        .wait_until(TIMEOUT, |s| s.settled() == 2)
        .await
        .unwrap();
    assert_eq!(
        (stats.handled, stats.skipped, stats.dead_lettered),
        (1, 1, 0)
    );
    assert!(
        broker
            .messages(consumer.topics().dead_letter_topic())
            .is_empty()
    );
    consumer.shutdown().await.unwrap();
    publisher.shutdown().await.unwrap();
}

/// Without the `tenant_id` attribute (another producer's event), a tenant group routes by the
/// tenant the event names, and skips what it cannot read, which names no tenant of its own.
#[tokio::test]
async fn a_tenant_group_routes_events_without_the_attribute_by_the_event() {
    let broker = InMemoryBroker::new();
    let bus = EventBus::new(Arc::new(broker.clone()), BusSettings::default());
    let recorder = Recorder::new();
    let subscription = bus
        .subscribe(
            bus.tenant_subscription("order.placed", "billing", "acme"),
            recorder.clone(),
        )
        .await
        .unwrap();
    let topic = bus.topics().topic("order.placed");
    let raw = |tenant: &str, id: &str| {
        Message::new(format!(
            r#"{{"specversion":"1.0","id":"{id}","source":"/py","type":"order.placed","tenantid":"{tenant}"}}"#
        ))
        .with_header("content-type", "application/cloudevents+json")
    };
    broker.publish(&topic, raw("globex", "g-1")).await.unwrap();
    broker
        .publish(&topic, Message::new("not an event"))
        .await
        .unwrap();
    broker.publish(&topic, raw("acme", "a-1")).await.unwrap();
    let stats = subscription
        .stats()
        .wait_until(TIMEOUT, |s| s.settled() == 3)
        .await
        .unwrap();
    assert_eq!(
        (stats.handled, stats.skipped, stats.dead_lettered),
        (1, 2, 0)
    );
    assert_eq!(recorder.events()[0].id, "a-1");
    bus.shutdown().await.unwrap();
}
