//! Cases about settling, leaving and rejoining groups, closing and shutting down.

use std::collections::HashSet;
use std::time::Duration;

use tokio::task::JoinSet;

use super::ConformanceTarget;
use super::fixture::{
    Fixture, TIMEOUT, ids, message_id, message_ids, next_delivery, publish_all, take_messages,
};
use crate::error::BusError;
use crate::handler::handler_fn;
use crate::testing::Recorder;
use crate::transport::Nack;

/// Every first delivery is nacked (half with a delay); each event comes back and none is lost.
pub async fn nack_redelivers_and_loses_nothing(target: &(impl ConformanceTarget + ?Sized)) {
    let fixture = Fixture::new(target);
    let config = fixture.subscription("nack.event", "g");
    let mut subscription = fixture.subscribe_raw(&config).await;
    let bus = fixture.bus().await;
    let events: Vec<_> = (0..50).map(|n| fixture.event("nack.event", n)).collect();
    publish_all(&bus, &events).await;

    let mut acked = HashSet::new();
    let mut nacked = 0;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while acked.len() < events.len() {
        let delivery = next_delivery(subscription.as_mut(), deadline).await;
        let id = message_id(delivery.message());
        if delivery.attempt() == 1 {
            let nack = if nacked % 2 == 0 {
                Nack::Requeue
            } else {
                Nack::RequeueAfter(Duration::from_millis(50))
            };
            nacked += 1;
            delivery.nack(nack).await.expect("nack");
        } else {
            acked.insert(id);
            delivery.ack().await.expect("ack");
        }
    }
    assert_eq!(acked, ids(&events));
    assert_eq!(
        nacked, 50,
        "every event's first delivery was nacked exactly once"
    );
    subscription.close().await.expect("close");
    bus.shutdown().await.expect("shutdown");
}

/// A member acks 10 events and leaves; the next member of its group gets exactly the rest,
/// including what was published while nobody was subscribed.
pub async fn a_closed_group_resumes_where_it_left_off(target: &(impl ConformanceTarget + ?Sized)) {
    if !target.capabilities().consumer_groups {
        return eprintln!("skipped: the backend has no consumer groups");
    }
    let fixture = Fixture::new(target);
    let config = fixture.subscription("resume.event", "g");
    let bus = fixture.bus().await;
    let mut first = fixture.subscribe_raw(&config).await;
    let early: Vec<_> = (0..30).map(|n| fixture.event("resume.event", n)).collect();
    publish_all(&bus, &early).await;
    let acked_first = message_ids(&take_messages(first.as_mut(), 10).await);
    first.close().await.expect("close");

    let late: Vec<_> = (30..50).map(|n| fixture.event("resume.event", n)).collect();
    publish_all(&bus, &late).await;
    let mut second = fixture.subscribe_raw(&config).await;
    let rest = message_ids(&take_messages(second.as_mut(), 40).await);
    second.close().await.expect("close");

    let all = ids(early.iter().chain(&late));
    assert!(
        acked_first.is_disjoint(&rest),
        "events acked before leaving were delivered again"
    );
    assert_eq!(
        acked_first.union(&rest).cloned().collect::<HashSet<_>>(),
        all
    );
    bus.shutdown().await.expect("shutdown");
}

/// Members join and leave one group concurrently while events flow; nothing fails and the
/// events acked by all of them together are every event.
pub async fn concurrent_subscribe_and_close_is_safe(target: &(impl ConformanceTarget + ?Sized)) {
    let fixture = Fixture::new(target);
    let config = fixture.subscription("churn.event", "g");
    let bus = fixture.bus().await;
    let events: Vec<_> = (0..200).map(|n| fixture.event("churn.event", n)).collect();
    let (first_half, second_half) = events.split_at(100);
    // The group exists before events flow; some brokers keep events only for existing groups.
    let founder = fixture.subscribe_raw(&config).await;
    founder.close().await.expect("close");
    publish_all(&bus, first_half).await;

    let mut members = JoinSet::new();
    for _ in 0..4 {
        let broker = fixture.broker().await;
        let config = config.clone();
        members.spawn(async move {
            let mut acked = HashSet::new();
            for _ in 0..3 {
                let mut subscription = broker
                    .subscribe(&config)
                    .await
                    .expect("subscribe while others churn");
                for _ in 0..5 {
                    let Ok(Some(delivery)) =
                        tokio::time::timeout(Duration::from_secs(2), subscription.next()).await
                    else {
                        break;
                    };
                    let delivery = delivery.expect("receive");
                    acked.insert(message_id(delivery.message()));
                    delivery.ack().await.expect("ack");
                }
                subscription
                    .close()
                    .await
                    .expect("close while others churn");
            }
            acked
        });
    }
    publish_all(&bus, second_half).await;
    let mut acked = HashSet::new();
    while let Some(member) = members.join_next().await {
        acked.extend(member.expect("member task"));
    }

    let mut last = fixture.subscribe_raw(&config).await;
    let missing = events.len() - acked.len();
    acked.extend(message_ids(&take_messages(last.as_mut(), missing).await));
    last.close().await.expect("close");
    assert_eq!(acked, ids(&events));
    bus.shutdown().await.expect("shutdown");
}

/// A publisher that is closed right after a batch has delivered all of it, and refuses more.
pub async fn the_publisher_flushes_on_close(target: &(impl ConformanceTarget + ?Sized)) {
    let fixture = Fixture::new(target);
    let consumer = fixture.bus().await;
    let recorder = Recorder::new();
    consumer
        .subscribe(fixture.subscription("flush.event", "g"), recorder.clone())
        .await
        .expect("subscribe");

    let publisher = fixture.bus().await;
    let events: Vec<_> = (0..100).map(|n| fixture.event("flush.event", n)).collect();
    let results = publisher.publish_batch(&events).await;
    assert!(
        results.iter().all(Result::is_ok),
        "batch publish failed: {results:?}"
    );
    publisher.shutdown().await.expect("close flushes");
    let refused = publisher.publish(&fixture.event("flush.event", 100)).await;
    assert!(
        matches!(refused, Err(BusError::Closed(_))),
        "publishing after close: {refused:?}"
    );

    let received = recorder
        .wait_until(TIMEOUT, |e| ids(e).len() >= 100)
        .await
        .expect("the whole batch arrives");
    assert_eq!(ids(&received), ids(&events));
    consumer.shutdown().await.expect("shutdown");
}

/// Shutting down while handlers run lets them finish and settle; the group's next member
/// gets everything else.
pub async fn graceful_shutdown_loses_nothing_in_flight(target: &(impl ConformanceTarget + ?Sized)) {
    let fixture = Fixture::new(target);
    let config = fixture.subscription("drain.event", "g").max_in_flight(4);
    let (started, finished) = (Recorder::new(), Recorder::new());
    let handler = {
        let (started, finished) = (started.clone(), finished.clone());
        handler_fn(move |event| {
            let (started, finished) = (started.clone(), finished.clone());
            async move {
                started.record(&event);
                tokio::time::sleep(Duration::from_millis(100)).await;
                finished.record(&event);
                Ok(())
            }
        })
    };
    let first = fixture.bus().await;
    first
        .subscribe(config.clone(), handler)
        .await
        .expect("subscribe");
    let events: Vec<_> = (0..40).map(|n| fixture.event("drain.event", n)).collect();
    publish_all(&first, &events).await;

    started.wait_for(4, TIMEOUT).await.expect("handlers start");
    first.shutdown().await.expect("shutdown");
    assert_eq!(
        ids(&finished.events()),
        ids(&started.events()),
        "a handler was cut off by shutdown"
    );

    let second = fixture.bus().await;
    let rest = Recorder::new();
    second
        .subscribe(config, rest.clone())
        .await
        .expect("subscribe");
    let done = ids(&finished.events());
    rest.wait_until(TIMEOUT, |e| done.union(&ids(e)).count() >= events.len())
        .await
        .expect("the rest arrives at the next member");
    second.shutdown().await.expect("shutdown");
}

/// A member that leaves with a delivery it never settled (as a crashed consumer would)
/// hands it back: the group's next member receives it again.
pub async fn an_unsettled_delivery_is_redelivered(target: &(impl ConformanceTarget + ?Sized)) {
    let fixture = Fixture::new(target);
    let config = fixture.subscription("unsettled.event", "g");
    let mut first = fixture.subscribe_raw(&config).await;
    let bus = fixture.bus().await;
    let event = fixture.event("unsettled.event", 1);
    bus.publish(&event).await.expect("publish");

    let abandoned = next_delivery(first.as_mut(), tokio::time::Instant::now() + TIMEOUT).await;
    assert_eq!(message_id(abandoned.message()), event.id);
    drop(abandoned);
    first.close().await.expect("close");

    let mut second = fixture.subscribe_raw(&config).await;
    let again = take_messages(second.as_mut(), 1).await;
    assert_eq!(message_id(&again[0]), event.id);
    second.close().await.expect("close");
    bus.shutdown().await.expect("shutdown");
}
