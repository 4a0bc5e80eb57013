//! Who creates the broker's topology: the bus as it goes, or an administrator beforehand.

use std::fmt;
use std::str::FromStr;

use super::SubscriptionConfig;
use crate::error::BusError;

/// Whether the bus creates the topics, queues, subscriptions and groups it uses
/// (`EVENT_BUS_TOPOLOGY`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TopologyMode {
    /// Create what is missing, as the bus goes (`create`, the default).
    #[default]
    Create,
    /// Use only what exists; a missing piece is [`BusError::MissingTopology`] (`existing`:
    /// least privilege, after `eventbus setup` created everything).
    Existing,
}

impl TopologyMode {
    /// Refuses an instance-scoped (ephemeral) group under [`Existing`](Self::Existing): its
    /// owner would have to create and delete it.
    pub fn check_instance_scoped(
        self,
        backend: &'static str,
        config: &SubscriptionConfig,
    ) -> Result<(), BusError> {
        if self == Self::Existing && config.ephemeral {
            return Err(BusError::InstanceScopedGroup {
                backend,
                group: config.consumer_group.clone(),
            });
        }
        Ok(())
    }

    /// True when the bus may create what is missing.
    pub fn creates(self) -> bool {
        self == Self::Create
    }
}

impl FromStr for TopologyMode {
    type Err = ();

    fn from_str(value: &str) -> Result<Self, ()> {
        match value.trim().to_ascii_lowercase().as_str() {
            "create" => Ok(Self::Create),
            "existing" => Ok(Self::Existing),
            _ => Err(()),
        }
    }
}

/// One piece of broker topology a subscription uses, as `eventbus setup` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopologyItem {
    /// What the broker calls it: `stream`, `consumer group`, `queue`, `topic`, ….
    pub kind: &'static str,
    /// Its name on the broker.
    pub name: String,
    /// What it belongs to, when its name is not unique on its own (the stream of a group).
    pub of: Option<Box<TopologyItem>>,
}

impl TopologyItem {
    /// A piece of `kind` named `name`.
    pub fn new(kind: &'static str, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
            of: None,
        }
    }

    /// The same piece, belonging to `parent`.
    #[must_use]
    pub fn of(mut self, parent: TopologyItem) -> Self {
        self.of = Some(Box::new(parent));
        self
    }
}

impl fmt::Display for TopologyItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}`", self.kind, self.name)?;
        match &self.of {
            Some(parent) => write!(f, " of {parent}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_names_what_it_belongs_to() {
        let group = TopologyItem::new("consumer group", "billing")
            .of(TopologyItem::new("stream", "events-order-placed"));
        assert_eq!(
            group.to_string(),
            "consumer group `billing` of stream `events-order-placed`"
        );
    }

    #[test]
    fn existing_mode_refuses_instance_scoped_groups_only() {
        let durable = SubscriptionConfig::new("t", "g");
        let ephemeral = SubscriptionConfig::new("t", "replies-1").ephemeral();
        assert!(
            TopologyMode::Create
                .check_instance_scoped("redis", &ephemeral)
                .is_ok()
        );
        assert!(
            TopologyMode::Existing
                .check_instance_scoped("redis", &durable)
                .is_ok()
        );
        let error = TopologyMode::Existing
            .check_instance_scoped("redis", &ephemeral)
            .unwrap_err();
        assert!(error.to_string().contains("replies-1"), "{error}");
        assert!(
            error.to_string().contains("EVENT_BUS_TOPOLOGY=existing"),
            "{error}"
        );
    }
}
