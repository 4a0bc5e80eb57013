//! The reconnect case: the server restarts while events flow, and none is lost.

use std::time::Duration;

use super::ConformanceTarget;
use super::fixture::{Fixture, TIMEOUT, ids};
use crate::testing::Recorder;

/// Pause between a failed publish and the next try, while the server is away.
const REPUBLISH_PAUSE: Duration = Duration::from_millis(100);

/// 2000 events are published one by one while the server restarts after the first 500; a
/// failed publish is a clear error and is tried again, as a caller would. Every event reaches
/// the consumer group (at least once; the idempotency layer absorbs duplicates).
pub async fn no_event_is_lost_across_a_server_restart(target: &(impl ConformanceTarget + ?Sized)) {
    const EVENTS: u64 = 2000;
    const RESTART_AFTER: usize = 500;
    if !target.capabilities().can_restart_server {
        return eprintln!("skipped: the target cannot restart its server");
    }
    let fixture = Fixture::new(target);
    let consumer = fixture.bus().await;
    let recorder = Recorder::new();
    let config = fixture.subscription("restart.event", "g").max_in_flight(32);
    consumer
        .subscribe(config, recorder.clone())
        .await
        .expect("subscribe");

    let events: Vec<_> = (0..EVENTS)
        .map(|n| fixture.event("restart.event", n))
        .collect();
    let publisher = fixture.bus().await;
    let (halfway_tx, halfway_rx) = tokio::sync::oneshot::channel();
    let publishing = {
        let events = events.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + TIMEOUT * 2;
            let mut halfway = Some(halfway_tx);
            let mut failures = 0_u32;
            for (index, event) in events.iter().enumerate() {
                while let Err(error) = publisher.publish(event).await {
                    failures += 1;
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "publishing never recovered: {error}"
                    );
                    tokio::time::sleep(REPUBLISH_PAUSE).await;
                }
                if index + 1 == RESTART_AFTER
                    && let Some(halfway) = halfway.take()
                {
                    let _ = halfway.send(());
                }
            }
            publisher.shutdown().await.expect("close publisher");
            failures
        })
    };
    halfway_rx
        .await
        .expect("the publisher reaches the restart point");
    target.restart_server().await.expect("restart the server");
    let failures = publishing.await.expect("publisher task");
    eprintln!("publishes that failed during the restart and were tried again: {failures}");

    let expected = ids(&events);
    let received = recorder
        .wait_until(TIMEOUT * 2, |e| ids(e).len() >= expected.len())
        .await
        .unwrap_or_else(|got| {
            panic!("{got} deliveries, not all {EVENTS} events, after the restart")
        });
    assert_eq!(ids(&received), expected);
    consumer.shutdown().await.expect("shutdown");
}
