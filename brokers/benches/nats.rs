//! The NATS JetStream backend against raw `async-nats` doing the same work, in one run of
//! interleaved rounds (the bus goes first in odd rounds, the raw client in even ones), with
//! streams in file storage:
//!
//! - publish: 16 concurrent publishers on one connection, each encoding its events and
//!   awaiting the stream's acknowledgement of every one;
//! - consume: 4 members of one durable pull consumer on one connection, pulling 32 at a time,
//!   each handling 32 events at once: decode the envelope, then a confirmed `+ACK` (a request
//!   on the message's reply subject, which is what the bus sends).
//!
//! Prints each side's median over the rounds with the spread (lowest to highest), and the
//! ratio of the medians.
//!
//! `cargo bench -p event-bus-brokers --features nats --bench nats` (needs a NATS server with
//! JetStream on NATS_URL, default `nats://127.0.0.1:4222`; fresh streams per round, deleted
//! afterwards).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer::pull, stream};
use common::{Counter, bus_publish_rate, event, event_number, publish_rate};
use event_bus_brokers::nats::{NatsBroker, NatsOptions};
use event_bus_core::{BusSettings, EventBus, Message, handler_fn};
use futures::StreamExt;

const ROUNDS: usize = 7;
const EVENTS: u64 = 20_000;
const PUBLISHERS: u64 = 16;
const MEMBERS: usize = 4;
const IN_FLIGHT: usize = 32;

fn settings(prefix: &str) -> BusSettings {
    BusSettings::from_vars([("EVENT_BUS_TOPIC_PREFIX", prefix)]).expect("settings")
}

async fn bus(url: &str, prefix: &str) -> EventBus {
    let settings = settings(prefix);
    let options = NatsOptions::from_vars([("NATS_URL", url)], &settings).expect("options");
    let broker = NatsBroker::connect(options).await.expect("connect");
    EventBus::new(Arc::new(broker), settings)
}

async fn bus_publish(url: &str, prefix: &str) -> f64 {
    let bus = bus(url, prefix).await;
    // Creates the topic's stream before the clock starts.
    bus.publish(&event(EVENTS)).await.expect("warm up");
    bus_publish_rate(bus, EVENTS).await
}

/// The NATS headers the bus writes for `message`.
fn raw_headers(message: &Message) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in &message.headers {
        headers.insert(name.as_str(), value.as_str());
    }
    if let Some(key) = &message.key {
        headers.insert("Event-Bus-Key", key.as_str());
    }
    headers
}

async fn raw_stream(jetstream: &jetstream::Context, name: &str) -> stream::Stream {
    jetstream
        .create_stream(stream::Config {
            name: name.to_owned(),
            subjects: vec![name.to_owned()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .expect("stream")
}

async fn raw_publish_one(jetstream: &jetstream::Context, subject: &str, n: u64) {
    let message = event(n).to_message().expect("encode");
    jetstream
        .publish_with_headers(subject.to_owned(), raw_headers(&message), message.payload)
        .await
        .expect("send")
        .await
        .expect("acknowledged");
}

async fn raw_publish(url: &str, name: &str) -> f64 {
    let client = async_nats::connect(url).await.expect("connect");
    let jetstream = jetstream::new(client);
    raw_stream(&jetstream, name).await;
    let subject: Arc<str> = name.into();
    publish_rate(EVENTS, PUBLISHERS, move |n| {
        let (jetstream, subject) = (jetstream.clone(), Arc::clone(&subject));
        async move { raw_publish_one(&jetstream, &subject, n).await }
    })
    .await
}

/// Fills `subject`'s stream with the round's events, as the bus would have written them.
async fn fill(jetstream: &jetstream::Context, subject: &str) {
    // In chunks: the client lets only so many acknowledgements be outstanding at once.
    for chunk in (0..EVENTS).collect::<Vec<_>>().chunks(1000) {
        let mut acks = Vec::with_capacity(chunk.len());
        for &n in chunk {
            let message = event(n).to_message().expect("encode");
            acks.push(
                jetstream
                    .publish_with_headers(
                        subject.to_owned(),
                        raw_headers(&message),
                        message.payload,
                    )
                    .await
                    .expect("send"),
            );
        }
        for ack in acks {
            ack.await.expect("acknowledged");
        }
    }
}

async fn bus_consume(url: &str, prefix: &str) -> f64 {
    let bus = bus(url, prefix).await;
    let config = bus
        .subscription("bench.event", "bench")
        .max_in_flight(IN_FLIGHT);
    let client = async_nats::connect(url).await.expect("connect");
    let jetstream = jetstream::new(client);
    // The stream as the bus creates it: named after the topic, file storage, limits retention.
    raw_stream(&jetstream, &config.topic).await;
    fill(&jetstream, &config.topic).await;

    let counter = Arc::new(Counter::new(EVENTS));
    let started = Instant::now();
    for _ in 0..MEMBERS {
        let counter = Arc::clone(&counter);
        let handler = handler_fn(move |event| {
            counter.handled(event.payload["n"].as_u64().expect("n"));
            async { Ok(()) }
        });
        bus.subscribe(config.clone(), handler)
            .await
            .expect("subscribe");
    }
    let rate = counter.rate_since(started).await;
    bus.shutdown().await.expect("shutdown");
    rate
}

async fn raw_consume(url: &str, name: &str) -> f64 {
    let client = async_nats::connect(url).await.expect("connect");
    let jetstream = jetstream::new(client.clone());
    let stream = raw_stream(&jetstream, name).await;
    fill(&jetstream, name).await;

    let counter = Arc::new(Counter::new(EVENTS));
    let started = Instant::now();
    let consumer: jetstream::consumer::PullConsumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("bench".to_owned()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .expect("consumer");
    let members: Vec<_> = (0..MEMBERS)
        .map(|_| {
            let (consumer, client, counter) =
                (consumer.clone(), client.clone(), Arc::clone(&counter));
            tokio::spawn(async move {
                let messages = consumer
                    .stream()
                    .max_messages_per_batch(IN_FLIGHT)
                    .messages()
                    .await
                    .expect("pull");
                messages
                    .for_each_concurrent(IN_FLIGHT, |message| {
                        let (client, counter) = (client.clone(), Arc::clone(&counter));
                        async move {
                            let message = message.expect("message");
                            counter.handled(event_number(&message.payload));
                            let reply = message.reply.clone().expect("an ack subject");
                            client.request(reply, "+ACK".into()).await.expect("ack");
                        }
                    })
                    .await;
            })
        })
        .collect();
    let rate = counter.rate_since(started).await;
    for member in members {
        member.abort();
    }
    rate
}

async fn delete_streams(url: &str, names: &[String]) {
    let jetstream = jetstream::new(async_nats::connect(url).await.expect("connect"));
    for name in names {
        let _ = jetstream.delete_stream(name).await;
    }
}

/// Median, lowest and highest.
fn summary(rates: &mut [f64]) -> (f64, f64, f64) {
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() / 2], rates[0], rates[rates.len() - 1])
}

fn row(name: &str, bus: &mut [f64], raw: &mut [f64]) {
    let (bus, bus_low, bus_high) = summary(bus);
    let (raw, raw_low, raw_high) = summary(raw);
    println!(
        "{name:<34} {bus:>8.0} ({bus_low:>6.0}-{bus_high:<6.0}) {raw:>8.0} ({raw_low:>6.0}-{raw_high:<6.0}) {:>7.2}",
        bus / raw
    );
}

#[tokio::main]
async fn main() {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let run = uuid::Uuid::now_v7().simple().to_string();
    let (mut publish_bus, mut publish_raw) = (Vec::new(), Vec::new());
    let (mut consume_bus, mut consume_raw) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let bus_prefix = format!("bench-{run}-{round}");
        let raw_publish_stream = format!("bench-raw-publish-{run}-{round}");
        let raw_consume_stream = format!("bench-raw-consume-{run}-{round}");
        let consume_prefix = format!("{bus_prefix}-consume");
        if round % 2 == 0 {
            publish_bus.push(bus_publish(&url, &bus_prefix).await);
            publish_raw.push(raw_publish(&url, &raw_publish_stream).await);
            consume_bus.push(bus_consume(&url, &consume_prefix).await);
            consume_raw.push(raw_consume(&url, &raw_consume_stream).await);
        } else {
            publish_raw.push(raw_publish(&url, &raw_publish_stream).await);
            publish_bus.push(bus_publish(&url, &bus_prefix).await);
            consume_raw.push(raw_consume(&url, &raw_consume_stream).await);
            consume_bus.push(bus_consume(&url, &consume_prefix).await);
        }
        let topics = settings(&bus_prefix).topic_names();
        let consume_topics = settings(&consume_prefix).topic_names();
        delete_streams(
            &url,
            &[
                topics.topic("bench.event"),
                consume_topics.topic("bench.event"),
                raw_publish_stream,
                raw_consume_stream,
            ],
        )
        .await;
        eprintln!("round {} of {ROUNDS} done", round + 1);
    }

    println!(
        "NATS JetStream (file storage), {ROUNDS} interleaved rounds of {EVENTS} events of {} bytes; events/s, median (lowest-highest)",
        event(0).to_message().expect("encode").size()
    );
    println!(
        "{:<34} {:>24} {:>24} {:>7}",
        "", "bus", "raw async-nats", "bus/raw"
    );
    row(
        &format!("publish, {PUBLISHERS} concurrent publishers"),
        &mut publish_bus,
        &mut publish_raw,
    );
    row(
        &format!("consume, {MEMBERS} members acking"),
        &mut consume_bus,
        &mut consume_raw,
    );
}
