//! The conformance suite on NATS JetStream, against a nats-server this test starts itself
//! (JetStream storing in files), so the restart case can stop and start it.
#![cfg(feature = "nats")]

use std::sync::Arc;

use async_trait::async_trait;
use event_bus_brokers::nats::{NatsBroker, NatsOptions};
use event_bus_core::conformance::ConformanceTarget;
use event_bus_core::{BoxError, Broker, BusSettings, Capabilities};
use event_bus_tests::nats_server::NatsServer;

/// A private server, with the bus's default settings (an ack deadline of 30 seconds).
struct Nats(NatsServer);

#[async_trait]
impl ConformanceTarget for Nats {
    async fn connect(&self) -> Arc<dyn Broker> {
        let options = NatsOptions::from_vars([("NATS_URL", self.0.url())], &BusSettings::default())
            .expect("options");
        Arc::new(NatsBroker::connect(options).await.expect("connect to nats"))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            can_restart_server: true,
            ..NatsBroker::CAPABILITIES
        }
    }

    async fn restart_server(&self) -> Result<(), BoxError> {
        Ok(self.0.restart()?)
    }
}

event_bus_core::conformance_tests!(Nats(NatsServer::start().expect("start nats-server")));

/// `EVENT_BUS_TOPOLOGY=existing` over TLS (the CA given with `NATS_TLS_CA_FILE`) as a user who
/// may not create, change or delete streams and consumers: the core cases pass on what an
/// administrator made; a missing consumer is a clear error naming it and `eventbus setup`; a
/// wrong password and an untrusted certificate are typed access errors.
mod least_privilege {
    use event_bus_core::{AccessKind, Subscriber, SubscriptionConfig};
    use event_bus_tests::certificates::UnrelatedCa;
    use event_bus_tests::nats_server::{ADMIN_USER, WORKER_USER};
    use event_bus_tests::provisioned::Provisioned;
    use event_bus_tests::refusals::{
        expect_instance_scoped_refused, expect_missing, expect_refusal,
    };

    use super::*;

    /// A secured server's worker, with `TopologyMode::Existing`, beside its administrator.
    struct LeastPrivileged(NatsServer);

    impl LeastPrivileged {
        fn options(&self, user: (&str, &str), topology: &str) -> NatsOptions {
            let bus = BusSettings::from_vars([("EVENT_BUS_TOPOLOGY", topology)]).unwrap();
            let ca = self.0.ca_file().display().to_string();
            NatsOptions::from_vars(
                [("NATS_URL", self.0.tls_url(user)), ("NATS_TLS_CA_FILE", ca)],
                &bus,
            )
            .expect("options")
        }

        async fn broker(&self, user: (&str, &str), topology: &str) -> NatsBroker {
            NatsBroker::connect(self.options(user, topology))
                .await
                .expect("connect over TLS")
        }
    }

    #[async_trait]
    impl ConformanceTarget for LeastPrivileged {
        async fn connect(&self) -> Arc<dyn Broker> {
            let admin = self.broker(ADMIN_USER, "create").await;
            let worker = self.broker(WORKER_USER, "existing").await;
            Arc::new(Provisioned::new(Arc::new(admin), Arc::new(worker)))
        }

        fn capabilities(&self) -> Capabilities {
            NatsBroker::CAPABILITIES
        }
    }

    fn server() -> LeastPrivileged {
        LeastPrivileged(NatsServer::start_secured().expect("start a secured nats-server"))
    }

    event_bus_tests::least_privilege_conformance_tests!(server());

    #[tokio::test]
    async fn a_missing_stream_or_consumer_is_an_error_naming_it_and_the_setup_command() {
        let target = server();
        let worker = target.broker(WORKER_USER, "existing").await;
        expect_missing(
            &worker,
            &SubscriptionConfig::new("lp-orders", "billing"),
            "stream `lp-orders`",
        )
        .await;

        let admin = target.broker(ADMIN_USER, "create").await;
        admin
            .provision(&SubscriptionConfig::new("lp-orders", "audit"))
            .await
            .unwrap();
        expect_missing(
            &worker,
            &SubscriptionConfig::new("lp-orders", "billing"),
            "durable consumer `billing` of stream `lp-orders`",
        )
        .await;
        expect_instance_scoped_refused(&worker, "lp-orders").await;
    }

    #[tokio::test]
    async fn creating_a_stream_without_the_permission_is_a_permission_error() {
        let target = server();
        let worker = target.broker(WORKER_USER, "create").await;
        let error = expect_refusal(
            "nats",
            AccessKind::Permission,
            &[WORKER_USER.1],
            worker.subscribe(&SubscriptionConfig::new("lp-payments", "billing")),
        )
        .await;
        assert!(
            error
                .to_string()
                .contains("$JS.API.STREAM.CREATE.lp-payments"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_wrong_password_and_an_untrusted_certificate_are_access_errors() {
        let target = server();
        let (worker, password) = WORKER_USER;
        let wrong = "nats-wrong-password-8e31";
        expect_refusal(
            "nats",
            AccessKind::Credentials,
            &[wrong, password],
            NatsBroker::connect(target.options((worker, wrong), "existing")),
        )
        .await;

        let stranger = UnrelatedCa::new().unwrap();
        let mut options = target.options(WORKER_USER, "existing");
        options.tls_ca_file = Some(stranger.file.clone());
        expect_refusal(
            "nats",
            AccessKind::Certificate,
            &[password],
            NatsBroker::connect(options),
        )
        .await;
    }
}
