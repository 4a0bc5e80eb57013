//! Throughput of the RabbitMQ backend against the raw `lapin` client and `omniqueue`'s RabbitMQ
//! backend doing the same work, in one run of interleaved rounds (the side that goes first
//! changes every round). Every side gets the layout the bus declares: a durable topic exchange
//! whose alternate exchange keeps unrouted messages in a queue, and the group's durable quorum
//! queue bound to the topic.
//!
//! - publish: 64 concurrent publishing tasks on one channel, each event encoded as the bus's
//!   envelope JSON and published persistent (delivery mode 2), not mandatory, with the bus's
//!   headers (`content-type` as the AMQP property, `ce_*` as `cloudEvents:*`), each publish
//!   awaiting its publisher confirm;
//! - publish_batch: 4 concurrent tasks publishing batches of 100 (the bus's `publish_batch`
//!   against 100 `basic_publish` whose 100 confirms are then awaited together; omniqueue has
//!   no batch send);
//! - consume: 4 members, each with a connection and channel of its own and a prefetch of 16, each
//!   message decoded into an `EventEnvelope` and acknowledged on its own, 16 at once. Each side
//!   consumes the queue its publish round filled, so consuming is measured alone (after a 3 s pause
//!   that lets the broker settle), from the first event handled to the last (connecting, declaring
//!   and registering the consumers are left out).
//!
//! Where omniqueue differs (its defaults, not choices of this bench): it publishes without
//! publisher confirms (its channel is never put in confirm mode, so a send returns once the
//! frame is written), with the same fixed properties for every message (here: persistent) and
//! no per-message headers; it declares nothing (this bench declares the layout for it); it
//! uses lapin 2 (the bus and the raw side lapin 4), here on the bench's tokio runtime as
//! omniqueue's own tests run it; its `receive_all` takes what the consumer has buffered, up to
//! 16, and the bench acknowledges those together.
//!
//! Prints a markdown table: each side's median events/s over the rounds with the spread
//! (lowest–highest), and the ratios of the medians.
//!
//! `cargo bench -p event-bus-brokers --features rabbitmq --bench rabbitmq_throughput` (needs
//! RabbitMQ on RABBITMQ_URL, default `amqp://guest:guest@127.0.0.1:5672/%2f`; fresh names per
//! round, deleted after it).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{
    BATCH, Counter, MEMBERS, PUBLISHERS, Prefixes, Side, Throughput, amqp_consumer, batch_rate,
    bus_batch_rate, bus_consume_rate, bus_publish_rate, decoded_number, event, measure,
    omniqueue_consume_rate, publish_rate,
};
use event_bus_brokers::rabbitmq::{RabbitMqBroker, RabbitMqOptions};
use event_bus_core::{BusSettings, EventBus, EventEnvelope, Message};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use omniqueue::backends::rabbitmq as omni;
use omniqueue::backends::{RabbitMqBackend, RabbitMqConfig};

const ROUNDS: usize = 5;
const EVENTS: u64 = 60_000;
/// Each member's prefetch, and the deliveries it handles at once.
const PREFETCH: u16 = 16;
const GROUP: &str = "bench";
const EVENT_TYPE: &str = "bench.event";
/// The broker deletes the run's queues this long after their last use, should the run die
/// before deleting them.
const EXPIRY: Duration = Duration::from_secs(600);
/// The steps of the bus's retry ladder in a decade (10, 15, 22, 33, 47, 68 ms, then ten
/// times those, …), for deleting its retry queues.
const RETRY_STEPS: [u64; 6] = [10, 15, 22, 33, 47, 68];
/// Decades of the bus's retry ladder.
const RETRY_DECADES: u32 = 11;
/// AMQP delivery mode of messages written to disk.
const PERSISTENT: u8 = 2;

/// The names one side's case uses: the exchange is named after the topic prefix, as the bench
/// configures the bus.
#[derive(Clone)]
struct Names {
    exchange: String,
    topic: String,
    queue: String,
}

impl Names {
    fn new(prefix: &str) -> Self {
        let topics = settings(prefix).topic_names();
        let topic = topics.topic(EVENT_TYPE);
        let group = topics.handler_subscription(EVENT_TYPE, GROUP);
        Self {
            exchange: prefix.to_owned(),
            queue: format!("{topic}.{group}"),
            topic,
        }
    }

    fn unrouted(&self) -> String {
        format!("{}.unrouted", self.exchange)
    }
}

/// The names of one side's round: its publish round fills the queue its consume round empties.
struct Round {
    publish: Names,
    batch: Names,
}

impl Round {
    fn new(run: &str, round: usize, side: Side) -> Self {
        let prefixes = Prefixes::new(run, round, side);
        Self {
            publish: Names::new(&prefixes.publish),
            batch: Names::new(&prefixes.batch),
        }
    }
}

fn settings(prefix: &str) -> BusSettings {
    BusSettings::from_vars([("EVENT_BUS_TOPIC_PREFIX", prefix)]).expect("settings")
}

async fn bus(url: &str, names: &Names) -> EventBus {
    let options = RabbitMqOptions {
        url: url.to_owned(),
        exchange: names.exchange.clone(),
        publish_timeout: Duration::from_secs(30),
        queue_expiry: Some(EXPIRY),
        dead_letters: None,
        tls: Default::default(),
        topology: Default::default(),
    };
    let broker = RabbitMqBroker::connect(options).await.expect("connect");
    EventBus::new(Arc::new(broker), settings(&names.exchange))
}

/// A bus whose group's queue (and the rest of its subscription's topology) exists, so what it
/// publishes is kept for the group.
async fn provisioned_bus(url: &str, names: &Names) -> EventBus {
    let bus = bus(url, names).await;
    let config = bus.subscription(EVENT_TYPE, GROUP);
    bus.broker().provision(&config).await.expect("provision");
    bus
}

/// Each member is a bus of its own (its own broker and connection).
async fn bus_consume(url: &str, names: &Names) -> f64 {
    bus_consume_rate(
        EVENTS,
        async || bus(url, names).await,
        |member| {
            member
                .subscription(EVENT_TYPE, GROUP)
                .max_in_flight(PREFETCH.into())
        },
    )
    .await
}

async fn connection(url: &str) -> Connection {
    Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("connect")
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.as_bytes().to_vec()))
}

/// Declares on `channel` what the bus declares for its group: the unrouted fanout exchange
/// and its queue, the topic exchange with it as alternate exchange, and the group's quorum
/// queue bound to the topic.
async fn declare(channel: &Channel, names: &Names) {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    let mut expiring = FieldTable::default();
    expiring.insert(
        "x-expires".into(),
        AMQPValue::LongLongInt(EXPIRY.as_millis() as i64),
    );
    let unrouted = names.unrouted();
    channel
        .exchange_declare(
            unrouted.as_str().into(),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        )
        .await
        .expect("unrouted exchange");
    channel
        .queue_declare(
            unrouted.as_str().into(),
            QueueDeclareOptions::durable(),
            expiring.clone(),
        )
        .await
        .expect("unrouted queue");
    bind(channel, &unrouted, &unrouted, "").await;
    let mut alternate = FieldTable::default();
    alternate.insert("alternate-exchange".into(), text(&unrouted));
    channel
        .exchange_declare(
            names.exchange.as_str().into(),
            ExchangeKind::Topic,
            durable,
            alternate,
        )
        .await
        .expect("exchange");
    let mut quorum = expiring;
    quorum.insert("x-queue-type".into(), text("quorum"));
    channel
        .queue_declare(
            names.queue.as_str().into(),
            QueueDeclareOptions::durable(),
            quorum,
        )
        .await
        .expect("group queue");
    bind(channel, &names.queue, &names.exchange, &names.topic).await;
}

async fn bind(channel: &Channel, queue: &str, exchange: &str, key: &str) {
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
}

/// A confirm-mode channel on a new connection, with the bus's layout declared.
async fn confirm_channel(url: &str, names: &Names) -> (Connection, Channel) {
    let connection = connection(url).await;
    let channel = connection.create_channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    declare(&channel, names).await;
    (connection, channel)
}

/// The properties the bus publishes `message` with: persistent, its `content-type` header as
/// the AMQP property, `ce_{name}` headers as `cloudEvents:{name}`, its key as
/// `x-event-bus-key`.
fn raw_properties(message: &Message) -> BasicProperties {
    let mut headers = FieldTable::default();
    let mut properties = BasicProperties::default().with_delivery_mode(PERSISTENT);
    for (name, value) in &message.headers {
        if name == "content-type" {
            properties = properties.with_content_type(value.as_str().into());
        } else if let Some(attribute) = name.strip_prefix("ce_") {
            headers.insert(format!("cloudEvents:{attribute}").into(), text(value));
        } else {
            headers.insert(name.as_str().into(), text(value));
        }
    }
    if let Some(key) = &message.key {
        headers.insert("x-event-bus-key".into(), text(key));
    }
    properties.with_headers(headers)
}

/// Publishes event `n` on `channel` as the bus would; the confirm is the caller's to await.
async fn raw_send(
    channel: &Channel,
    names: &Names,
    event: &EventEnvelope,
) -> lapin::PublisherConfirm {
    let message = event.to_message().expect("encode");
    channel
        .basic_publish(
            names.exchange.as_str().into(),
            names.topic.as_str().into(),
            BasicPublishOptions::default(),
            &message.payload,
            raw_properties(&message),
        )
        .await
        .expect("publish")
}

async fn raw_publish(url: &str, names: &Names) -> f64 {
    let (connection, channel) = confirm_channel(url, names).await;
    let rate = publish_rate(EVENTS, PUBLISHERS, {
        let (channel, names) = (channel.clone(), Arc::new(names.clone()));
        move |n| {
            let (channel, names) = (channel.clone(), Arc::clone(&names));
            async move {
                raw_send(&channel, &names, &event(n))
                    .await
                    .await
                    .expect("confirm");
            }
        }
    })
    .await;
    close(connection, channel).await;
    rate
}

async fn raw_publish_batch(url: &str, names: &Names) -> f64 {
    let (connection, channel) = confirm_channel(url, names).await;
    let rate = batch_rate(EVENTS, {
        let (channel, names) = (channel.clone(), Arc::new(names.clone()));
        move |events: Vec<EventEnvelope>| {
            let (channel, names) = (channel.clone(), Arc::clone(&names));
            async move {
                let mut confirms = Vec::with_capacity(BATCH as usize);
                for event in &events {
                    confirms.push(raw_send(&channel, &names, event).await);
                }
                for confirmed in futures::future::join_all(confirms).await {
                    confirmed.expect("confirm");
                }
            }
        }
    })
    .await;
    close(connection, channel).await;
    rate
}

/// Closes `channel`, then its `connection` (a channel dropped open is closed in the
/// background, which the connection's close would then trip over).
async fn close(connection: Connection, channel: Channel) {
    channel
        .close(200, "done".into())
        .await
        .expect("close channel");
    connection.close(200, "done".into()).await.expect("close");
}

/// One member: a consumer with a prefetch of `PREFETCH` on `channel`, each delivery decoded
/// and acknowledged, `PREFETCH` at once.
async fn raw_member(channel: Channel, queue: String, counter: Arc<Counter>) {
    let consumer = amqp_consumer(&channel, &queue, PREFETCH).await;
    consumer
        .for_each_concurrent(usize::from(PREFETCH), |delivery| {
            let counter = Arc::clone(&counter);
            async move {
                let delivery = delivery.expect("delivery");
                counter.handled(decoded_number(&delivery.data));
                delivery.ack(BasicAckOptions::default()).await.expect("ack");
            }
        })
        .await;
}

/// Each member has a connection and a channel of its own.
async fn raw_consume(url: &str, names: &Names) -> f64 {
    let mut channels = Vec::with_capacity(MEMBERS);
    for _ in 0..MEMBERS {
        let connection = connection(url).await;
        let channel = connection.create_channel().await.expect("channel");
        channels.push((connection, channel));
    }
    let counter = Arc::new(Counter::new(EVENTS));
    let members: Vec<_> = channels
        .iter()
        .map(|(_, channel)| {
            tokio::spawn(raw_member(
                channel.clone(),
                names.queue.clone(),
                Arc::clone(&counter),
            ))
        })
        .collect();
    let rate = counter.rate_from_first().await;
    for member in members {
        member.abort();
        let _ = member.await;
    }
    for (connection, channel) in channels {
        close(connection, channel).await;
    }
    rate
}

/// omniqueue's settings for `names`: persistent messages to the topic, a prefetch of
/// `PREFETCH` on the group's queue, lapin 2 on the bench's tokio runtime.
fn omniqueue_config(url: &str, names: &Names) -> RabbitMqConfig {
    RabbitMqConfig {
        uri: url.to_owned(),
        connection_properties: omni::ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio),
        publish_exchange: names.exchange.clone(),
        publish_routing_key: names.topic.clone(),
        publish_options: omni::BasicPublishOptions::default(),
        publish_properties: omni::BasicProperties::default().with_delivery_mode(PERSISTENT),
        consume_queue: names.queue.clone(),
        consumer_tag: String::new(),
        consume_options: omni::BasicConsumeOptions::default(),
        consume_arguments: omni::FieldTable::default(),
        consume_prefetch_count: Some(PREFETCH),
        requeue_on_nack: false,
    }
}

/// omniqueue sends the same envelope JSON the bus and the raw side publish.
async fn omniqueue_publish(url: &str, names: &Names) -> f64 {
    let (connection, channel) = confirm_channel(url, names).await;
    close(connection, channel).await;
    let producer = Arc::new(
        RabbitMqBackend::builder(omniqueue_config(url, names))
            .build_producer()
            .await
            .expect("producer"),
    );
    publish_rate(EVENTS, PUBLISHERS, move |n| {
        let producer = Arc::clone(&producer);
        async move {
            let message = event(n).to_message().expect("encode");
            producer.send_raw(&message.payload).await.expect("send");
        }
    })
    .await
}

async fn omniqueue_consume(url: &str, names: &Names) -> f64 {
    let mut consumers = Vec::with_capacity(MEMBERS);
    for _ in 0..MEMBERS {
        consumers.push(
            RabbitMqBackend::builder(omniqueue_config(url, names))
                .build_consumer()
                .await
                .expect("consumer"),
        );
    }
    omniqueue_consume_rate(EVENTS, consumers, PREFETCH.into()).await
}

/// The RabbitMQ backend, raw lapin and omniqueue, on one server.
struct RabbitMq {
    url: String,
    /// Names this run's exchanges and queues apart from any other's.
    run: String,
    /// Deletes what the rounds made.
    cleanup: Connection,
}

impl Throughput for RabbitMq {
    type Round = Round;

    const SIDES: &'static [Side] = &[Side::Bus, Side::Raw, Side::Omniqueue];

    fn round(&self, round: usize, side: Side) -> Round {
        Round::new(&self.run, round, side)
    }

    async fn publish(&self, side: Side, round: &Round) -> f64 {
        let (url, names) = (&self.url, &round.publish);
        match side {
            Side::Bus => bus_publish_rate(provisioned_bus(url, names).await, EVENTS).await,
            Side::Raw => raw_publish(url, names).await,
            Side::Omniqueue => omniqueue_publish(url, names).await,
        }
    }

    async fn publish_batch(&self, side: Side, round: &Round) -> Option<f64> {
        let (url, names) = (&self.url, &round.batch);
        match side {
            Side::Bus => Some(bus_batch_rate(provisioned_bus(url, names).await, EVENTS).await),
            Side::Raw => Some(raw_publish_batch(url, names).await),
            Side::Omniqueue => None,
        }
    }

    async fn consume(&self, side: Side, round: &Round) -> f64 {
        let (url, names) = (&self.url, &round.publish);
        match side {
            Side::Bus => bus_consume(url, names).await,
            Side::Raw => raw_consume(url, names).await,
            Side::Omniqueue => omniqueue_consume(url, names).await,
        }
    }

    async fn delete(&self, _: Side, round: &Round) {
        let channel = self.cleanup.create_channel().await.expect("channel");
        delete(&channel, &round.publish).await;
        delete(&channel, &round.batch).await;
        channel.close(200, "done".into()).await.expect("close");
    }
}

/// Deletes the queues and exchanges of `names` and, for the bus, its dead-letter group's
/// queue and its retry queues (every step of its ladder is tried; deleting a queue that does
/// not exist is no error).
async fn delete(channel: &Channel, names: &Names) {
    let settings = settings(&names.exchange);
    let mut queues = vec![
        names.queue.clone(),
        names.unrouted(),
        format!(
            "{}.{}",
            settings.topic_names().dead_letter_topic(),
            settings.dead_letter_subscription
        ),
    ];
    for decade in 0..RETRY_DECADES {
        for step in RETRY_STEPS {
            let ms = step * 10_u64.pow(decade);
            queues.push(format!("{}.retry.{ms}ms", names.queue));
        }
    }
    for queue in queues {
        channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await
            .expect("delete queue");
    }
    for exchange in [&names.exchange, &names.unrouted()] {
        channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await
            .expect("delete exchange");
    }
}

#[tokio::main]
async fn main() {
    let url = std::env::var("RABBITMQ_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    let rabbitmq = RabbitMq {
        cleanup: connection(&url).await,
        url,
        run: uuid::Uuid::now_v7().simple().to_string(),
    };
    let measured = measure(&rabbitmq, ROUNDS).await;
    rabbitmq
        .cleanup
        .close(200, "done".into())
        .await
        .expect("close");
    measured.print(
        "RabbitMQ (quorum queue, persistent messages)",
        EVENTS,
        "raw lapin",
        &format!("acking, prefetch {PREFETCH}"),
    );
}
