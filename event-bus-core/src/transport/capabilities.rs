//! What a backend guarantees, declared honestly so the conformance suite tests exactly that.

/// Guarantees of a backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Members of one consumer group share its events, and each group gets every event.
    pub consumer_groups: bool,
    /// Events with one key are handled in publish order when ordering is on.
    pub per_key_ordering: bool,
    /// Events survive a restart of the broker.
    pub persistent: bool,
    /// A consumer group created after events were published still receives them.
    pub new_subscriber_receives_old_messages: bool,
    /// The test setup can restart the server to exercise reconnection.
    pub can_restart_server: bool,
}
