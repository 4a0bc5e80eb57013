//! What the in-memory benches share: a bus whose one subscription counts what it handles.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use event_bus_core::{BusSettings, EventBus, InMemoryBroker, handler_fn};

/// A bus on a new in-memory broker with the default settings, and the count of events its
/// subscription (group `billing` of `order.placed`) has handled.
pub async fn counting_bus() -> (EventBus, Arc<AtomicUsize>) {
    let bus = EventBus::new(Arc::new(InMemoryBroker::new()), BusSettings::default());
    let handled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&handled);
    let handler = handler_fn(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
        async { Ok(()) }
    });
    bus.subscribe(bus.subscription("order.placed", "billing"), handler)
        .await
        .expect("subscribe");
    (bus, handled)
}

/// Waits until `handled` reaches `count`.
pub async fn wait_until_handled(handled: &AtomicUsize, count: usize) {
    while handled.load(Ordering::Relaxed) < count {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}
