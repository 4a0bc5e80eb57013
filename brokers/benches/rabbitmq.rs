//! The RabbitMQ backend against the raw `lapin` client doing the same work, in one run: a
//! durable topic exchange, a quorum queue, persistent messages each awaiting its publisher
//! confirm, one consumer with a prefetch of 16 acknowledging each message. Measures publish
//! rate, end-to-end rate and publish-to-handle latency of paced events.
//!
//! `cargo bench -p event-bus-brokers --features rabbitmq --bench rabbitmq` (needs RabbitMQ on
//! RABBITMQ_URL, default `amqp://guest:guest@127.0.0.1:5672/%2f`; fresh names, deleted after).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Clock, Measured, amqp_consumer, event, event_number, print_table, run};
use event_bus_brokers::rabbitmq::{RabbitMqBroker, RabbitMqOptions};
use event_bus_core::{BusSettings, EventBus, Message, handler_fn};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};

/// Queues of the run are deleted by the broker if the run dies before deleting them.
const EXPIRY: Duration = Duration::from_secs(600);

async fn through_the_bus(url: &str, prefix: &str) -> Measured {
    let options = RabbitMqOptions {
        url: url.to_owned(),
        exchange: prefix.to_owned(),
        publish_timeout: Duration::from_secs(30),
        queue_expiry: Some(EXPIRY),
        dead_letters: None,
        tls: Default::default(),
        topology: Default::default(),
    };
    let broker = Arc::new(RabbitMqBroker::connect(options).await.expect("connect"));
    let settings = BusSettings::from_vars([("EVENT_BUS_TOPIC_PREFIX", prefix)]).expect("settings");
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
    bus.subscribe(config, handler).await.expect("subscribe");
    let measured = run(&clock, async |n| {
        bus.publish(&event(n)).await.expect("publish")
    })
    .await;
    bus.shutdown().await.expect("shutdown");
    measured
}

async fn through_the_raw_client(url: &str, exchange: &str) -> Measured {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("connect");
    let publisher = connection.create_channel().await.expect("channel");
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    publisher
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await
        .expect("exchange");
    let queue = format!("{exchange}.raw");
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    arguments.insert(
        "x-expires".into(),
        AMQPValue::LongLongInt(EXPIRY.as_millis() as i64),
    );
    publisher
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions::durable(),
            arguments,
        )
        .await
        .expect("queue");
    publisher
        .queue_bind(
            queue.as_str().into(),
            exchange.into(),
            "bench.event".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");

    let consumer_channel = connection.create_channel().await.expect("channel");
    let mut consumer = amqp_consumer(&consumer_channel, &queue, 16).await;
    let clock = Arc::new(Clock::default());
    let reading = {
        let clock = Arc::clone(&clock);
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                clock.handled(event_number(&delivery.data));
                delivery.ack(BasicAckOptions::default()).await.expect("ack");
            }
        })
    };
    let measured = run(&clock, async |n| {
        let message: Message = event(n).to_message().expect("encode");
        let mut headers = FieldTable::default();
        for (name, value) in &message.headers {
            headers.insert(
                name.as_str().into(),
                AMQPValue::LongString(value.as_str().into()),
            );
        }
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_headers(headers);
        publisher
            .basic_publish(
                exchange.into(),
                "bench.event".into(),
                BasicPublishOptions::default(),
                &message.payload,
                properties,
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
    })
    .await;
    publisher
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .expect("delete queue");
    publisher
        .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
        .await
        .expect("delete exchange");
    connection.close(200, "done".into()).await.expect("close");
    reading.await.expect("reader");
    measured
}

#[tokio::main]
async fn main() {
    let url = std::env::var("RABBITMQ_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let bus = through_the_bus(&url, &format!("bench-{run_id}")).await;
    let raw = through_the_raw_client(&url, &format!("bench-raw-{run_id}")).await;
    print_table("RabbitMQ", &bus, &raw);
}
