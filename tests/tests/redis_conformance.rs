//! The conformance suite on Redis Streams, against a redis-server this test starts itself
//! (persisting with AOF), so the restart case can stop and start it; and again over TLS, as a
//! least-privileged ACL user (module `over_tls`).
#![cfg(feature = "redis")]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use event_bus_brokers::redis::{RedisBroker, RedisOptions, RedisTls};
use event_bus_core::conformance::ConformanceTarget;
use event_bus_core::{BoxError, Broker, Capabilities};
use event_bus_tests::redis_server::RedisServer;

/// A private server; entries unsettled for two seconds go to another member.
struct Redis(RedisServer);

/// How the bus reaches `server`: its URL, and its CA when it speaks TLS.
fn options(server: &RedisServer) -> RedisOptions {
    RedisOptions {
        url: server.url(),
        ack_deadline: Duration::from_secs(2),
        stream_max_len: None,
        tls: RedisTls {
            ca_file: server.is_tls().then(|| server.ca_file()),
            ..RedisTls::default()
        },
    }
}

#[async_trait]
impl ConformanceTarget for Redis {
    async fn connect(&self) -> Arc<dyn Broker> {
        Arc::new(
            RedisBroker::connect(options(&self.0))
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

/// A private redis-server that speaks TLS only (certificates made by the test, its CA given to
/// the bus with `REDIS_TLS_CA_FILE`), whose default user is off and whose one user may run only
/// the command groups the bus needs. Also: a wrong password is a clear error naming Redis, and
/// the password shows nowhere.
mod over_tls {
    use event_bus_core::BusSettings;
    use event_bus_tests::redis_server::TLS_PASSWORD;

    use super::*;

    event_bus_core::conformance_tests!(Redis(
        RedisServer::start_tls().expect("start redis-server with TLS")
    ));

    #[tokio::test]
    async fn the_settings_reach_tls_and_a_wrong_password_is_a_clear_error_without_it() {
        let server = RedisServer::start_tls().expect("start redis-server with TLS");
        let wrong = "wrong-password-c0ffee";
        let url = server.url().replace(TLS_PASSWORD, wrong);
        let ca = server.ca_file().display().to_string();
        let settings = BusSettings::from_vars([
            ("EVENT_BUS_TYPE", "redis"),
            ("REDIS_EVENT_URL", url.as_str()),
            ("REDIS_TLS_CA_FILE", ca.as_str()),
        ])
        .unwrap();
        let started = std::time::Instant::now();
        let error = event_bus_brokers::connect(settings)
            .await
            .err()
            .expect("the password is wrong");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
        let shown = format!("{error} {error:?}");
        assert!(shown.contains("redis"), "{shown}");
        assert!(!shown.contains(wrong), "the password leaked: {shown}");
        let options = RedisOptions::from_settings(
            &BusSettings::from_vars([("REDIS_EVENT_URL", url.as_str())]).unwrap(),
        )
        .unwrap();
        assert!(!format!("{options:?}").contains(wrong));

        let right = BusSettings::from_vars([
            ("EVENT_BUS_TYPE", "redis"),
            ("REDIS_EVENT_URL", server.url().as_str()),
            ("REDIS_TLS_CA_FILE", ca.as_str()),
        ])
        .unwrap();
        let bus = event_bus_brokers::connect(right)
            .await
            .expect("the right password");
        bus.shutdown().await.unwrap();
    }
}
