//! Exchanges and queues: what is declared before publishing and consuming
//! ([`TopologyMode::Create`]), or only checked with passive declares
//! ([`TopologyMode::Existing`]).

use std::collections::BTreeSet;
use std::time::Duration;

use event_bus_core::{BusError, SubscriptionConfig, TopologyItem, TopologyMode};
use lapin::options::{
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

use super::{amqp_error, is_not_found};

/// How long the queue of an instance's own (ephemeral) group outlives its last consumer: the
/// broker deletes it this long after its owner died without deleting it.
pub(super) const EPHEMERAL_QUEUE_EXPIRY: Duration = Duration::from_secs(60);

/// The steps of the retry ladder in a decade, in units of a tenth of the decade: the E6
/// series (1, 1.5, 2.2, 3.3, 4.7, 6.8).
const E6: [u64; 6] = [10, 15, 22, 33, 47, 68];

/// Decades of the ladder: its steps go from 10 ms to 68 × 10^10 ms (about 22 years).
const DECADES: u32 = 11;

/// Names of everything one bus declares.
#[derive(Clone, Debug)]
pub(super) struct Topology {
    /// The topic exchange events are published to.
    pub(super) exchange: String,
    /// Queues unused this long are deleted by the broker; `None` keeps them.
    pub(super) queue_expiry: Option<Duration>,
    /// Whether the bus declares what it uses, or only uses what exists.
    pub(super) mode: TopologyMode,
}

impl Topology {
    fn unrouted(&self) -> String {
        format!("{}.unrouted", self.exchange)
    }

    /// What a subscription of `config` uses: the exchange, the unrouted exchange and queue,
    /// the group's queue and its binding, its retry queues (an instance-scoped group's are
    /// made when first used, so not listed), and the queue (and binding) of the group that
    /// keeps its dead letters.
    pub(super) fn items(&self, config: &SubscriptionConfig) -> Vec<TopologyItem> {
        let exchange = TopologyItem::new("exchange", &self.exchange);
        let unrouted = self.unrouted();
        let queue = Self::group_queue(&config.topic, &config.consumer_group);
        let mut items = vec![
            exchange.clone(),
            TopologyItem::new("exchange", &unrouted),
            TopologyItem::new("queue", &unrouted),
            TopologyItem::new("queue", &queue),
            TopologyItem::new("binding", &config.topic).of(TopologyItem::new("queue", &queue)),
        ];
        if !config.ephemeral {
            items.extend(
                retry_steps(config)
                    .into_iter()
                    .map(|step| TopologyItem::new("queue", Self::retry_queue(&queue, step))),
            );
        }
        if let Some((topic, keeper)) = dead_letter_group(config) {
            items.push(TopologyItem::new("queue", &keeper));
            items.push(TopologyItem::new("binding", topic).of(TopologyItem::new("queue", keeper)));
        }
        items
    }

    /// Checks with passive declares on `channel` that the exchange, the group's queue, the
    /// dead-letter group's queue and the retry queues of a subscription of `config` exist;
    /// the first missing one is [`BusError::MissingTopology`] (and closes the channel).
    pub(super) async fn check_subscription(
        &self,
        channel: &Channel,
        config: &SubscriptionConfig,
    ) -> Result<(), BusError> {
        self.check_exchange(channel).await?;
        let queue = Self::group_queue(&config.topic, &config.consumer_group);
        check_queue(channel, &queue).await?;
        if let Some((_, keeper)) = dead_letter_group(config) {
            check_queue(channel, &keeper).await?;
        }
        for step in retry_steps(config) {
            check_queue(channel, &Self::retry_queue(&queue, step)).await?;
        }
        Ok(())
    }

    /// Checks with a passive declare on `channel` that the exchange exists; missing, it is
    /// [`BusError::MissingTopology`] (and the channel is closed).
    pub(super) async fn check_exchange(&self, channel: &Channel) -> Result<(), BusError> {
        let options = ExchangeDeclareOptions {
            passive: true,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(
                self.exchange.as_str().into(),
                ExchangeKind::Topic,
                options,
                FieldTable::default(),
            )
            .await
            .map_err(|error| missing_or(error, "exchange", &self.exchange))
    }

    /// Declares the retry queues a subscription of `config` can use.
    pub(super) async fn declare_retry_queues(
        &self,
        channel: &Channel,
        config: &SubscriptionConfig,
    ) -> Result<(), BusError> {
        let queue = Self::group_queue(&config.topic, &config.consumer_group);
        for step in retry_steps(config) {
            self.declare_retry_queue(channel, &queue, step, false)
                .await?;
        }
        Ok(())
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

    /// The retry queue of `queue` that holds messages for `step_ms` milliseconds.
    pub(super) fn retry_queue(queue: &str, step_ms: u64) -> String {
        format!("{queue}.retry.{step_ms}ms")
    }

    /// Declares the queue that holds messages for `step_ms` milliseconds and then hands them
    /// to `queue`; that of an `ephemeral` group expires [`EPHEMERAL_QUEUE_EXPIRY`] after its
    /// last message left. Returns its name.
    pub(super) async fn declare_retry_queue(
        &self,
        channel: &Channel,
        queue: &str,
        step_ms: u64,
        ephemeral: bool,
    ) -> Result<String, BusError> {
        let name = Self::retry_queue(queue, step_ms);
        let mut arguments = FieldTable::default();
        arguments.insert("x-message-ttl".into(), millis(u128::from(step_ms)));
        arguments.insert("x-dead-letter-exchange".into(), text(""));
        arguments.insert("x-dead-letter-routing-key".into(), text(queue));
        let arguments = if ephemeral {
            let expiry = EPHEMERAL_QUEUE_EXPIRY.as_millis() + u128::from(step_ms);
            arguments.insert("x-expires".into(), millis(expiry));
            arguments
        } else {
            self.expiry_arguments(arguments)
        };
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

/// The dead-letter topic of `config` and the queue of the group that keeps its messages,
/// unless the subscription is on that topic itself.
fn dead_letter_group(config: &SubscriptionConfig) -> Option<(&str, String)> {
    config
        .dead_letter_topic
        .as_deref()
        .filter(|topic| *topic != config.topic)
        .map(|topic| {
            let queue = Topology::group_queue(topic, &config.dead_letter_subscription);
            (topic, queue)
        })
}

/// Every step of the retry ladder, shortest first, in milliseconds: 10, 15, 22, 33, 47, 68,
/// 100, 150, ….
fn ladder() -> impl Iterator<Item = u64> {
    (0..DECADES).flat_map(|decade| E6.iter().map(move |step| step * 10_u64.pow(decade)))
}

/// The step of the retry ladder a delay waits in: the nearest in log scale (so at most about
/// 20% off), at least 10 ms. Few queues serve every delay, and `eventbus setup` can make them
/// all beforehand.
pub(super) fn retry_step(delay: Duration) -> u64 {
    let ms = delay.as_secs_f64() * 1000.0;
    let distance = |step: u64| ((step as f64).ln() - ms.ln()).abs();
    let mut nearest = E6[0];
    for step in ladder() {
        if distance(step) < distance(nearest) {
            nearest = step;
        }
        if step as f64 >= ms {
            break;
        }
    }
    nearest
}

/// The ladder's steps that the retry policy of `config` can ask for: for each attempt past
/// the immediate ones, the steps between its backoff less and more its jitter, until the
/// backoff reaches its cap.
pub(super) fn retry_steps(config: &SubscriptionConfig) -> BTreeSet<u64> {
    let policy = &config.retry;
    let mut steps = BTreeSet::new();
    if policy.immediate_attempts == u32::MAX {
        return steps;
    }
    let cap = policy.max_backoff.as_secs_f64();
    let jitter = policy.jitter.clamp(0.0, 1.0);
    for exponent in 0..64 {
        let base = policy.initial_backoff.as_secs_f64() * policy.multiplier.powi(exponent);
        if !base.is_finite() {
            break;
        }
        let base = base.clamp(0.0, cap);
        let longest = (base * (1.0 + jitter)).min(cap);
        if longest > 0.0 {
            let shortest = retry_step(Duration::from_secs_f64(base * (1.0 - jitter)));
            let longest = retry_step(Duration::from_secs_f64(longest));
            steps.extend(ladder().filter(|step| (shortest..=longest).contains(step)));
        }
        if base >= cap {
            break;
        }
    }
    steps
}

/// [`BusError::MissingTopology`] naming the `kind` `name` when a passive declare found
/// nothing; otherwise the broker's error.
fn missing_or(error: lapin::Error, kind: &'static str, name: &str) -> BusError {
    if is_not_found(&error) {
        BusError::missing("rabbitmq", TopologyItem::new(kind, name))
    } else {
        amqp_error(error)
    }
}

async fn check_queue(channel: &Channel, name: &str) -> Result<(), BusError> {
    let options = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(name.into(), options, FieldTable::default())
        .await
        .map(drop)
        .map_err(|error| missing_or(error, "queue", name))
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
    use event_bus_core::RetryPolicy;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn delays_snap_to_the_nearest_e6_step() {
        assert_eq!(retry_step(Duration::ZERO), 10);
        assert_eq!(retry_step(ms(3)), 10);
        assert_eq!(retry_step(ms(12)), 10);
        assert_eq!(retry_step(ms(13)), 15);
        assert_eq!(retry_step(ms(100)), 100);
        assert_eq!(retry_step(ms(1_200)), 1_000);
        assert_eq!(retry_step(ms(1_300)), 1_500);
        assert_eq!(retry_step(ms(30_000)), 33_000);
        assert_eq!(retry_step(ms(5_900)), 6_800);
        assert_eq!(
            retry_step(Duration::from_secs(u64::MAX / 4)),
            68 * 10_u64.pow(10)
        );
    }

    #[test]
    fn a_policy_uses_the_steps_between_its_shortest_and_longest_delay() {
        let config = SubscriptionConfig::new("orders", "billing").retry(RetryPolicy {
            immediate_attempts: 1,
            initial_backoff: ms(100),
            multiplier: 2.0,
            max_backoff: ms(1_000),
            jitter: 0.2,
        });
        let steps: Vec<u64> = retry_steps(&config).into_iter().collect();
        assert_eq!(steps, [68, 100, 150, 220, 330, 470, 680, 1_000]);
        let policy = &config.retry;
        let every_delay = (2..20)
            .flat_map(|attempt| (0..50).map(move |_| retry_step(policy.delay_after(attempt))));
        for step in every_delay {
            assert!(steps.contains(&step), "{step} ms is not among {steps:?}");
        }
    }

    #[test]
    fn a_policy_without_delays_uses_no_retry_queue() {
        let config = SubscriptionConfig::new("orders", "billing").retry(RetryPolicy::immediate());
        assert!(retry_steps(&config).is_empty());
    }
}
