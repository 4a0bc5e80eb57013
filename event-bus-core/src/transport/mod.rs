//! The contract a backend implements: publish, subscribe, and settle each delivery.

mod capabilities;
mod delivery;
mod publisher;
mod subscriber;
mod subscription_config;
mod topology;

pub use capabilities::Capabilities;
pub use delivery::{Delivery, Nack};
pub use publisher::Publisher;
pub use subscriber::{Subscriber, Subscription};
pub use subscription_config::{
    DEFAULT_DEAD_LETTER_SUBSCRIPTION, DEFAULT_HANDLER_TIMEOUT, DEFAULT_MAX_IN_FLIGHT,
    SubscriptionConfig,
};
pub use topology::{TopologyItem, TopologyMode};

/// A backend: a publisher and a subscriber over one broker, with its capabilities.
pub trait Broker: Publisher + Subscriber {
    /// Short backend name, the value of `EVENT_BUS_TYPE` that selects it.
    fn name(&self) -> &'static str;
    /// What this backend guarantees.
    fn capabilities(&self) -> Capabilities;

    /// What a subscription of `config` uses on the broker: what subscribing creates under
    /// [`TopologyMode::Create`] and requires under [`TopologyMode::Existing`], as `eventbus
    /// setup` lists it. Empty where the backend keeps nothing on a broker.
    fn topology(&self, config: &SubscriptionConfig) -> Vec<TopologyItem> {
        let _ = config;
        Vec::new()
    }
}
