//! The conformance suite on Redis Streams, against a redis-server this test starts itself
//! (persisting with AOF), so the restart case can stop and start it.
#![cfg(feature = "redis")]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use event_bus_brokers::redis::{RedisBroker, RedisOptions};
use event_bus_core::conformance::ConformanceTarget;
use event_bus_core::{BoxError, Broker, Capabilities};
use event_bus_tests::redis_server::RedisServer;

/// A private server; entries unsettled for two seconds go to another member.
struct Redis(RedisServer);

#[async_trait]
impl ConformanceTarget for Redis {
    async fn connect(&self) -> Arc<dyn Broker> {
        let options = RedisOptions {
            url: self.0.url(),
            ack_deadline: Duration::from_secs(2),
            stream_max_len: None,
            tls: Default::default(),
        };
        Arc::new(
            RedisBroker::connect(options)
                .await
                .expect("connect to redis"),
        )
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            consumer_groups: true,
            per_key_ordering: false,
            persistent: true,
            new_subscriber_receives_old_messages: true,
            can_restart_server: true,
        }
    }

    async fn restart_server(&self) -> Result<(), BoxError> {
        Ok(self.0.restart()?)
    }
}

event_bus_core::conformance_tests!(Redis(RedisServer::start().expect("start redis-server")));
