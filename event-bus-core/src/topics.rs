//! Topic, subscription and dead-letter names derived from event types.

/// Names broker resources: topic `{prefix}-{event-type}`, subscription
/// `{subscription_prefix}-sub-{event-type}` (a prefix that already ends in `-sub`, such as
/// `clone-sub`, gets no second one), dead letters `{prefix}-dead-letter`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicNames {
    topic_prefix: String,
    subscription_prefix: String,
    dead_letter_topic: String,
}

impl TopicNames {
    /// Names under `topic_prefix` and `subscription_prefix`; the dead-letter topic defaults to
    /// `{topic_prefix}-dead-letter`.
    pub fn new(topic_prefix: impl Into<String>, subscription_prefix: impl Into<String>) -> Self {
        let topic_prefix = topic_prefix.into();
        Self {
            dead_letter_topic: format!("{topic_prefix}-dead-letter"),
            topic_prefix,
            subscription_prefix: subscription_prefix.into(),
        }
    }

    /// Uses another dead-letter topic.
    #[must_use]
    pub fn with_dead_letter_topic(mut self, topic: impl Into<String>) -> Self {
        self.dead_letter_topic = topic.into();
        self
    }

    /// Topic of an event type: `user.registered` becomes `{prefix}-user-registered`.
    pub fn topic(&self, event_type: &str) -> String {
        let mut topic = String::with_capacity(self.topic_prefix.len() + 1 + event_type.len());
        topic.push_str(&self.topic_prefix);
        topic.push('-');
        topic.extend(event_type.chars().map(dash));
        topic
    }

    /// Default subscription (consumer group) of an event type.
    pub fn subscription(&self, event_type: &str) -> String {
        let prefix = &self.subscription_prefix;
        if prefix == "sub" || prefix.ends_with("-sub") {
            format!("{prefix}-{}", dashed(event_type))
        } else {
            format!("{prefix}-sub-{}", dashed(event_type))
        }
    }

    /// Subscription of one named handler of an event type, so each handler gets every event.
    pub fn handler_subscription(&self, event_type: &str, handler: &str) -> String {
        format!("{}-{}", self.subscription(event_type), dashed(handler))
    }

    /// The dead-letter topic.
    pub fn dead_letter_topic(&self) -> &str {
        &self.dead_letter_topic
    }
}

fn dashed(name: &str) -> String {
    name.chars().map(dash).collect()
}

/// `.`, `_` and space become `-`; other characters stay.
fn dash(c: char) -> char {
    if matches!(c, '.' | '_' | ' ') { '-' } else { c }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_prefix_ending_in_sub_gets_no_second_sub() {
        let names = TopicNames::new("clone", "clone-sub");
        assert_eq!(
            names.handler_subscription("user.registered", "audit"),
            "clone-sub-user-registered-audit"
        );
        assert_eq!(TopicNames::new("e", "sub").subscription("a.b"), "sub-a-b");
        assert_eq!(
            TopicNames::new("e", "subway").subscription("a.b"),
            "subway-sub-a-b"
        );
    }

    #[test]
    fn names_follow_the_prefixes() {
        let names = TopicNames::new("events", "svc");
        assert_eq!(names.topic("user.registered"), "events-user-registered");
        assert_eq!(
            names.subscription("user.registered"),
            "svc-sub-user-registered"
        );
        assert_eq!(
            names.handler_subscription("user.registered", "welcome_email"),
            "svc-sub-user-registered-welcome-email"
        );
        assert_eq!(names.dead_letter_topic(), "events-dead-letter");
        assert_eq!(
            names.with_dead_letter_topic("dlq").dead_letter_topic(),
            "dlq"
        );
    }
}
