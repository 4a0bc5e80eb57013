//! Integration tests of the event bus (see `tests/`), and the servers they start themselves.

pub mod certificates;
pub mod erasure;
pub mod provisioned;
pub mod python_peer;
pub mod refusals;
pub mod stall_proxy;
pub mod variables;

#[cfg(feature = "redis")]
pub mod redis_server;

#[cfg(feature = "rabbitmq")]
pub mod rabbitmq_server;

#[cfg(feature = "kafka")]
pub mod kafka_server;

#[cfg(feature = "kafka")]
pub mod tls_proxy;

#[cfg(feature = "nats")]
pub mod nats_server;

/// The README's code, compiled and run as doc tests so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
