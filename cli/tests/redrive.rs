//! `eventbus dlq redrive --all` on RabbitMQ (127.0.0.1:5672, store on 127.0.0.1:5432): the
//! redriven event reaches only the consumer group that dead-lettered it; another group that
//! handled it, restarted since (so its in-process dedup forgot it), does not handle it again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use assert_cmd::Command;
use event_bus_core::{BusSettings, EventBus, EventEnvelope, HandlerError, handler_fn};

const DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const TIMEOUT: Duration = Duration::from_secs(30);

fn vars(prefix: &str, schema: &str) -> Vec<(&'static str, String)> {
    vec![
        ("EVENT_BUS_TYPE", "rabbitmq".to_owned()),
        ("EVENT_BUS_TOPIC_PREFIX", prefix.to_owned()),
        ("RABBITMQ_QUEUE_EXPIRES_SECONDS", "300".to_owned()),
        ("DATABASE_URL", DATABASE_URL.to_owned()),
        ("EVENT_STORE_SCHEMA", schema.to_owned()),
    ]
}

fn eventbus(vars: &[(&'static str, String)], args: &[&str]) -> String {
    let output = Command::cargo_bin("eventbus")
        .unwrap()
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .args(args)
        .timeout(Duration::from_secs(60))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(output).unwrap()
}

async fn bus(vars: &[(&'static str, String)]) -> EventBus {
    let settings = BusSettings::from_vars(vars.iter().cloned()).unwrap();
    event_bus_brokers::connect(settings)
        .await
        .expect("connect to RabbitMQ on 127.0.0.1:5672")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redrive_on_rabbitmq_reaches_only_the_group_that_failed() {
    let id = uuid::Uuid::now_v7().simple();
    let vars = vars(&format!("evbus-redrive-{id}"), &format!("evbus_t_{id}"));
    // Declares the dead-letter queue, so the dead letter below is kept.
    assert_eq!(eventbus(&vars, &["dlq", "list"]), "0 dead letters\n");

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
    let billing_bus = bus(&vars).await;
    let billing_sub = billing_bus
        .subscribe(billing_bus.subscription("order.placed", "billing"), billing)
        .await
        .unwrap();
    let shipping_bus = bus(&vars).await;
    let shipping_sub = shipping_bus
        .subscribe(
            shipping_bus.subscription("order.placed", "shipping"),
            shipping.clone(),
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
    // Shipping restarts: its in-process dedup no longer knows the event.
    shipping_bus.shutdown().await.unwrap();
    let shipping_bus = bus(&vars).await;
    let shipping_sub = shipping_bus
        .subscribe(
            shipping_bus.subscription("order.placed", "shipping"),
            shipping,
        )
        .await
        .unwrap();

    assert_eq!(
        eventbus(&vars, &["dlq", "redrive", "--all"]),
        "redrove 1 dead letters\n"
    );
    billing_sub
        .stats()
        .wait_until(TIMEOUT, |s| s.handled == 1)
        .await
        .unwrap();
    shipping_sub
        .stats()
        .wait_until(TIMEOUT, |s| s.skipped == 1)
        .await
        .unwrap();
    assert_eq!(billing_calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        shipping_calls.load(Ordering::SeqCst),
        1,
        "shipping handled it once"
    );
    billing_bus.shutdown().await.unwrap();
    shipping_bus.shutdown().await.unwrap();
}
