//! Exchanges and queues: what is declared before publishing and consuming.

use std::time::Duration;

use event_bus_core::BusError;
use lapin::options::{
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

use super::amqp_error;

/// How long the queue of an instance's own (ephemeral) group outlives its last consumer: the
/// broker deletes it this long after its owner died without deleting it.
pub(super) const EPHEMERAL_QUEUE_EXPIRY: Duration = Duration::from_secs(60);

/// How long an unused retry queue outlives its delay before the broker deletes it.
const RETRY_QUEUE_LINGER: Duration = Duration::from_secs(60);

/// Names of everything one bus declares.
#[derive(Clone, Debug)]
pub(super) struct Topology {
    /// The topic exchange events are published to.
    pub(super) exchange: String,
    /// Queues unused this long are deleted by the broker; `None` keeps them.
    pub(super) queue_expiry: Option<Duration>,
}

impl Topology {
    fn unrouted(&self) -> String {
        format!("{}.unrouted", self.exchange)
    }

    /// The queue of a consumer group.
    pub(super) fn group_queue(topic: &str, group: &str) -> String {
        format!("{topic}.{group}")
    }

    /// Declares the topic exchange and, as its alternate exchange, the fanout exchange and
    /// queue that keep messages no queue is bound for.
    pub(super) async fn declare_exchange(&self, channel: &Channel) -> Result<(), BusError> {
        let unrouted = self.unrouted();
        declare(
            channel,
            &unrouted,
            ExchangeKind::Fanout,
            FieldTable::default(),
        )
        .await?;
        let queue_arguments = self.expiry_arguments(FieldTable::default());
        declare_queue(channel, &unrouted, queue_arguments).await?;
        bind(channel, &unrouted, &unrouted, "").await?;
        let mut arguments = FieldTable::default();
        arguments.insert("alternate-exchange".into(), text(&unrouted));
        declare(channel, &self.exchange, ExchangeKind::Topic, arguments).await
    }

    /// Declares a consumer group's quorum queue and binds it to its topic. The queue of an
    /// ephemeral group is a classic one that the broker deletes [`EPHEMERAL_QUEUE_EXPIRY`]
    /// after its last consumer left.
    pub(super) async fn declare_group(
        &self,
        channel: &Channel,
        topic: &str,
        queue: &str,
        ephemeral: bool,
    ) -> Result<(), BusError> {
        self.declare_exchange(channel).await?;
        let mut arguments = FieldTable::default();
        if ephemeral {
            arguments.insert(
                "x-expires".into(),
                millis(EPHEMERAL_QUEUE_EXPIRY.as_millis()),
            );
        } else {
            arguments.insert("x-queue-type".into(), text("quorum"));
            arguments = self.expiry_arguments(arguments);
        }
        declare_queue(channel, queue, arguments).await?;
        bind(channel, queue, &self.exchange, topic).await
    }

    /// Deletes a group's queue (an ephemeral group whose owner closed it).
    pub(super) async fn delete_group(channel: &Channel, queue: &str) -> Result<(), BusError> {
        channel
            .queue_delete(queue.into(), QueueDeleteOptions::default())
            .await
            .map(drop)
            .map_err(amqp_error)
    }

    /// Declares the queue that holds messages for `delay` and then hands them to `queue`.
    /// Returns its name.
    pub(super) async fn declare_retry_queue(
        &self,
        channel: &Channel,
        queue: &str,
        delay: Duration,
    ) -> Result<String, BusError> {
        let delay_ms = two_significant_digits(delay.as_millis()).max(1);
        let name = format!("{queue}.retry.{delay_ms}");
        let linger = u128::from(RETRY_QUEUE_LINGER.as_millis() as u64);
        let mut arguments = FieldTable::default();
        arguments.insert("x-message-ttl".into(), millis(delay_ms));
        arguments.insert("x-expires".into(), millis(delay_ms + linger));
        arguments.insert("x-dead-letter-exchange".into(), text(""));
        arguments.insert("x-dead-letter-routing-key".into(), text(queue));
        declare_queue(channel, &name, arguments).await?;
        Ok(name)
    }

    fn expiry_arguments(&self, mut arguments: FieldTable) -> FieldTable {
        if let Some(expiry) = self.queue_expiry {
            arguments.insert("x-expires".into(), millis(expiry.as_millis()));
        }
        arguments
    }
}

/// `n` rounded up to two significant digits (1234 → 1300), so delays share few queues.
fn two_significant_digits(n: u128) -> u128 {
    let mut unit = 1;
    while n / unit >= 100 {
        unit *= 10;
    }
    n.div_ceil(unit) * unit
}

async fn declare(
    channel: &Channel,
    name: &str,
    kind: ExchangeKind,
    arguments: FieldTable,
) -> Result<(), BusError> {
    let options = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(name.into(), kind, options, arguments)
        .await
        .map_err(amqp_error)
}

async fn declare_queue(
    channel: &Channel,
    name: &str,
    arguments: FieldTable,
) -> Result<(), BusError> {
    channel
        .queue_declare(name.into(), QueueDeclareOptions::durable(), arguments)
        .await
        .map(drop)
        .map_err(amqp_error)
}

async fn bind(channel: &Channel, queue: &str, exchange: &str, key: &str) -> Result<(), BusError> {
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(amqp_error)
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.as_bytes().to_vec()))
}

fn millis(value: u128) -> AMQPValue {
    AMQPValue::LongLongInt(i64::try_from(value).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::two_significant_digits;

    #[test]
    fn delays_round_up_to_two_significant_digits() {
        assert_eq!(two_significant_digits(7), 7);
        assert_eq!(two_significant_digits(99), 99);
        assert_eq!(two_significant_digits(101), 110);
        assert_eq!(two_significant_digits(1234), 1300);
        assert_eq!(two_significant_digits(20_000), 20_000);
    }
}
