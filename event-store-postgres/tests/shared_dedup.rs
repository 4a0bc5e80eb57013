//! Two consumer processes in one consumer group, deduplicating in PostgreSQL
//! (`EVENT_BUS_DEDUP_STORE=postgres`): ten events, each published twice, are handled exactly ten
//! times in all, on RabbitMQ, Kafka (at `KAFKA_BOOTSTRAP_SERVERS`, default 127.0.0.1:9092, which
//! the test command starts), Pub/Sub (the emulator at `PUBSUB_EMULATOR_HOST`) and NATS.
#![cfg(feature = "dedup-worker")]

mod common;

use common::workers::{Workers, group_settings};
use event_bus_core::{BusSettings, EventEnvelope};

const EVENTS: usize = 10;

/// Runs two workers on `backend`, publishes every event twice, and checks each was handled
/// once.
async fn two_consumers_handle_duplicates_once(backend: &str) {
    // The claim lease follows the ack deadline: a copy that finds its key claimed comes back
    // after two seconds rather than thirty.
    let vars = group_settings(backend, "postgres", 2);
    let mut workers = Workers::new(&vars);
    workers.start(&[]);
    workers.start(&[]);
    workers
        .wait_for("both workers ready", common::TIMEOUT, |s| s.ready == 2)
        .await;

    let publisher = event_store_postgres::connect_bus(BusSettings::from_vars(vars).unwrap())
        .await
        .expect("connect the publisher");
    let events: Vec<EventEnvelope> = (0..EVENTS)
        .map(|n| {
            EventEnvelope::builder("order.placed", serde_json::json!({ "n": n }))
                .aggregate("order", format!("o-{n}"), 1)
                .build()
        })
        .collect();
    for event in &events {
        publisher.publish(event).await.unwrap();
        publisher.publish(event).await.unwrap();
    }
    workers
        .wait_for("every delivery settled", common::TIMEOUT * 2, |s| {
            s.settled() >= 2 * EVENTS as u64
        })
        .await;
    workers.stop_all().await;
    publisher.shutdown().await.unwrap();

    let seen = workers.seen();
    assert_eq!(seen.distinct_handled().len(), EVENTS, "every event handled");
    assert_eq!(
        seen.handled.len(),
        EVENTS,
        "each handled once: {:?}",
        seen.handled
    );
    assert_eq!(seen.dead_lettered(), 0, "none dead-lettered");
}

#[tokio::test]
async fn two_rabbitmq_processes_handle_each_duplicated_event_once() {
    two_consumers_handle_duplicates_once("rabbitmq").await;
}

#[tokio::test]
async fn two_kafka_processes_handle_each_duplicated_event_once() {
    two_consumers_handle_duplicates_once("kafka").await;
}

#[tokio::test]
async fn two_pubsub_processes_handle_each_duplicated_event_once() {
    two_consumers_handle_duplicates_once("pubsub").await;
}

#[tokio::test]
async fn two_nats_processes_handle_each_duplicated_event_once() {
    two_consumers_handle_duplicates_once("nats").await;
}
