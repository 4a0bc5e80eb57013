//! Integration tests of the event bus (see `tests/`), and the servers they start themselves.

#[cfg(feature = "redis")]
pub mod redis_server;

#[cfg(feature = "rabbitmq")]
pub mod rabbitmq_server;

#[cfg(feature = "kafka")]
pub mod kafka_server;
