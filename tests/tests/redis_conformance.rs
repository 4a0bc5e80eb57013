//! The conformance suite on Redis Streams, against a redis-server this test starts itself
//! (persisting with AOF), so the restart case can stop and start it; and again over TLS, as a
//! least-privileged ACL user (module `over_tls`).
#![cfg(feature = "redis")]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use event_bus_brokers::redis::{RedisBroker, RedisOptions, RedisTls};
use event_bus_core::conformance::ConformanceTarget;
use event_bus_core::{BoxError, Broker, Capabilities, TopologyMode};
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
        topology: TopologyMode::Create,
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
            can_restart_server: true,
            ..RedisBroker::CAPABILITIES
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

/// `EVENT_BUS_TOPOLOGY=existing` over TLS as a user who may not create, move or destroy
/// consumer groups: the core cases pass on groups an administrator made, a missing group is a
/// clear error naming it and `eventbus setup`, and creating one is a permission error.
mod least_privilege {
    use event_bus_core::{AccessKind, Subscriber, SubscriptionConfig};
    use event_bus_tests::certificates::UnrelatedCa;
    use event_bus_tests::provisioned::Provisioned;
    use event_bus_tests::redis_server::WORKER_PASSWORD;
    use event_bus_tests::refusals::{
        expect_instance_scoped_refused, expect_missing, expect_refusal,
    };

    use super::*;

    /// The TLS server's worker, with `TopologyMode::Existing`, beside its administrator.
    struct LeastPrivileged(RedisServer);

    impl LeastPrivileged {
        async fn worker(&self, topology: TopologyMode) -> RedisBroker {
            let options = RedisOptions {
                url: self.0.worker_url(),
                topology,
                ..options(&self.0)
            };
            RedisBroker::connect(options)
                .await
                .expect("connect as the worker")
        }
    }

    #[async_trait]
    impl ConformanceTarget for LeastPrivileged {
        async fn connect(&self) -> Arc<dyn Broker> {
            let admin = RedisBroker::connect(options(&self.0))
                .await
                .expect("connect as the administrator");
            let worker = self.worker(TopologyMode::Existing).await;
            Arc::new(Provisioned::new(Arc::new(admin), Arc::new(worker)))
        }

        fn capabilities(&self) -> Capabilities {
            RedisBroker::CAPABILITIES
        }
    }

    fn server() -> LeastPrivileged {
        LeastPrivileged(RedisServer::start_tls().expect("start redis-server with TLS"))
    }

    event_bus_tests::least_privilege_conformance_tests!(server());

    #[tokio::test]
    async fn a_missing_group_is_an_error_naming_it_and_the_setup_command() {
        let target = server();
        let worker = target.worker(TopologyMode::Existing).await;
        let admin = RedisBroker::connect(options(&target.0)).await.unwrap();

        expect_missing(
            &worker,
            &SubscriptionConfig::new("lp-orders", "billing"),
            "stream `lp-orders`",
        )
        .await;

        admin
            .provision(&SubscriptionConfig::new("lp-orders", "audit"))
            .await
            .unwrap();
        expect_missing(
            &worker,
            &SubscriptionConfig::new("lp-orders", "billing"),
            "consumer group `billing` of stream `lp-orders`",
        )
        .await;
        expect_instance_scoped_refused(&worker, "lp-orders").await;
        worker
            .subscribe(&SubscriptionConfig::new("lp-orders", "audit"))
            .await
            .expect("the group exists")
            .close()
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn creating_a_group_without_the_permission_is_a_permission_error() {
        let target = server();
        let worker = target.worker(TopologyMode::Create).await;
        let error = expect_refusal(
            "redis",
            AccessKind::Permission,
            &[WORKER_PASSWORD],
            worker.subscribe(&SubscriptionConfig::new("lp-payments", "billing")),
        )
        .await;
        assert!(error.to_string().contains("permission denied"), "{error}");
    }

    #[tokio::test]
    async fn a_wrong_password_and_an_untrusted_certificate_are_access_errors() {
        let target = server();
        let wrong = "redis-wrong-password-4d2b";
        let url = target.0.worker_url().replace(WORKER_PASSWORD, wrong);
        let wrong_password = RedisOptions {
            url,
            ..options(&target.0)
        };
        expect_refusal(
            "redis",
            AccessKind::Credentials,
            &[wrong],
            RedisBroker::connect(wrong_password),
        )
        .await;

        let stranger = UnrelatedCa::new().unwrap();
        let mut untrusting = options(&target.0);
        untrusting.tls.ca_file = Some(stranger.file.clone());
        expect_refusal(
            "redis",
            AccessKind::Certificate,
            &[],
            RedisBroker::connect(untrusting),
        )
        .await;
    }
}
