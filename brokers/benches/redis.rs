//! The Redis Streams backend against the raw `redis` client doing the same work, in one run:
//! publish rate (one awaited XADD per event), end-to-end rate (publish until every event is
//! handled and acknowledged by one consumer), and publish-to-handle latency of paced events.
//!
//! `cargo bench -p event-bus-brokers --bench redis` (needs Redis on REDIS_EVENT_URL,
//! default `redis://127.0.0.1:6379`; uses fresh stream names and deletes them afterwards).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Clock, Measured, event, event_number, print_table, run, xadd};
use event_bus_brokers::redis::{RedisBroker, RedisOptions};
use event_bus_core::{BusSettings, EventBus, Message, handler_fn};
use redis::streams::StreamReadReply;
use tokio::sync::Notify;

async fn through_the_bus(url: &str, topic_prefix: &str) -> Measured {
    let options = RedisOptions {
        url: url.to_owned(),
        ack_deadline: Duration::from_secs(30),
        stream_max_len: None,
        tls: Default::default(),
        topology: Default::default(),
    };
    let broker = Arc::new(RedisBroker::connect(options).await.expect("connect"));
    let settings =
        BusSettings::from_vars([("EVENT_BUS_TOPIC_PREFIX", topic_prefix)]).expect("settings");
    let bus = EventBus::new(broker, settings);
    let clock = Arc::new(Clock::default());
    let handler = {
        let clock = Arc::clone(&clock);
        handler_fn(move |event| {
            clock.handled(event.payload["n"].as_u64().expect("n"));
            async { Ok(()) }
        })
    };
    let config = bus.subscription("bench.event", "bench").max_in_flight(16);
    bus.subscribe(config.clone(), handler)
        .await
        .expect("subscribe");
    let measured = run(&clock, async |n| {
        bus.publish(&event(n)).await.expect("publish")
    })
    .await;
    bus.shutdown().await.expect("shutdown");
    delete(
        url,
        &[
            config.topic.clone(),
            format!("{}:delayed:{}", config.topic, config.consumer_group),
        ],
    )
    .await;
    measured
}

async fn delete(url: &str, keys: &[String]) {
    let client = redis::Client::open(url).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let _: i64 = redis::cmd("DEL")
        .arg(keys)
        .query_async(&mut conn)
        .await
        .expect("delete bench keys");
}

async fn through_the_raw_client(url: &str, stream: &str) -> Measured {
    let client = redis::Client::open(url).expect("url");
    let mut publisher = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let mut consumer = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg("bench")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut consumer)
        .await
        .expect("group");
    let clock = Arc::new(Clock::default());
    let stop = Arc::new(Notify::new());
    let reading = {
        let (clock, stop, stream) = (Arc::clone(&clock), Arc::clone(&stop), stream.to_owned());
        tokio::spawn(async move {
            loop {
                let mut read = redis::cmd("XREADGROUP");
                read.arg("GROUP")
                    .arg("bench")
                    .arg("raw")
                    .arg("COUNT")
                    .arg(16)
                    .arg("BLOCK")
                    .arg(100)
                    .arg("STREAMS")
                    .arg(&stream)
                    .arg(">");
                let read = read.query_async::<Option<StreamReadReply>>(&mut consumer);
                let reply = tokio::select! {
                    () = stop.notified() => return,
                    reply = read => reply.expect("read"),
                };
                for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
                    let Some(redis::Value::BulkString(payload)) = entry.map.get("payload") else {
                        continue;
                    };
                    clock.handled(event_number(payload));
                    let _: i64 = redis::cmd("XACK")
                        .arg(&stream)
                        .arg("bench")
                        .arg(&entry.id)
                        .query_async(&mut consumer)
                        .await
                        .expect("ack");
                }
            }
        })
    };
    let measured = run(&clock, async |n| {
        let message: Message = event(n).to_message().expect("encode");
        let _: String = xadd(stream, &message)
            .query_async(&mut publisher)
            .await
            .expect("xadd");
    })
    .await;
    stop.notify_one();
    reading.await.expect("reader");
    delete(url, &[stream.to_owned()]).await;
    measured
}

#[tokio::main]
async fn main() {
    let url =
        std::env::var("REDIS_EVENT_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let bus = through_the_bus(&url, &format!("bench-{run_id}")).await;
    let raw = through_the_raw_client(&url, &format!("bench-raw-{run_id}")).await;

    print_table("Redis Streams", &bus, &raw);
}
