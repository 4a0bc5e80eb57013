//! The conformance suite on RabbitMQ, against the server on 127.0.0.1:5672 (or RABBITMQ_URL);
//! each case declares its own exchange and queues, which expire once the case is over. The
//! restart case runs in `rabbitmq_restart.rs` on a node of its own.
#![cfg(feature = "rabbitmq")]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use event_bus_brokers::rabbitmq::{RabbitMqBroker, RabbitMqOptions};
use event_bus_core::conformance::ConformanceTarget;
use event_bus_core::{Broker, Capabilities};

/// A server and an exchange of the case's own.
struct RabbitMq {
    url: String,
    exchange: String,
}

impl RabbitMq {
    fn shared_server() -> Self {
        Self {
            url: std::env::var("RABBITMQ_URL")
                .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()),
            exchange: format!("conf-{}", uuid::Uuid::now_v7().simple()),
        }
    }
}

#[async_trait]
impl ConformanceTarget for RabbitMq {
    async fn connect(&self) -> Arc<dyn Broker> {
        let options = RabbitMqOptions {
            url: self.url.clone(),
            exchange: self.exchange.clone(),
            publish_timeout: Duration::from_secs(5),
            queue_expiry: Some(Duration::from_secs(300)),
            dead_letters: None,
            tls: Default::default(),
            topology: Default::default(),
        };
        Arc::new(
            RabbitMqBroker::connect(options)
                .await
                .expect("connect to rabbitmq"),
        )
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            consumer_groups: true,
            per_key_ordering: false,
            persistent: true,
            new_subscriber_receives_old_messages: false,
            can_restart_server: false,
        }
    }
}

event_bus_core::conformance_tests!(RabbitMq::shared_server());

/// Least privilege over TLS, on a node of the test's own: a worker allowed to write and read
/// but not to configure (`configure ""`, write `.*`, read `.*`) runs under
/// `EVENT_BUS_TOPOLOGY=existing` on what an administrator (every permission) made, as
/// `eventbus setup` does. Each test starts one node, so the core cases run in one test.
mod least_privilege {
    use std::time::Instant;

    use event_bus_brokers::rabbitmq::RabbitMqTls;
    use event_bus_core::{
        AccessKind, Message, Nack, Publisher, Subscriber, SubscriptionConfig, TopologyMode,
    };
    use event_bus_tests::certificates::UnrelatedCa;
    use event_bus_tests::provisioned::Provisioned;
    use event_bus_tests::rabbitmq_server::{
        ADMIN_PASSWORD, ADMIN_USER, RabbitMqServer, VHOST, WORKER_PASSWORD, WORKER_USER,
    };
    use event_bus_tests::refusals::{
        expect_instance_scoped_refused, expect_missing, expect_refusal,
    };

    use super::*;

    /// A TLS node with its administrator and worker.
    struct LeastPrivileged(RabbitMqServer);

    impl LeastPrivileged {
        fn start() -> Self {
            Self(RabbitMqServer::start_tls().expect("start a RabbitMQ node with TLS"))
        }

        fn options(&self, user: &str, password: &str, topology: TopologyMode) -> RabbitMqOptions {
            RabbitMqOptions {
                url: self.0.tls_url(user, password),
                tls: RabbitMqTls {
                    ca_file: Some(self.0.ca_file()),
                    ..RabbitMqTls::default()
                },
                exchange: "lp-events".to_owned(),
                publish_timeout: Duration::from_secs(5),
                queue_expiry: None,
                dead_letters: None,
                topology,
            }
        }

        async fn admin(&self) -> RabbitMqBroker {
            let options = self.options(ADMIN_USER, ADMIN_PASSWORD, TopologyMode::Create);
            RabbitMqBroker::connect(options)
                .await
                .expect("connect as the administrator")
        }

        async fn worker(&self, topology: TopologyMode) -> RabbitMqBroker {
            let options = self.options(WORKER_USER, WORKER_PASSWORD, topology);
            RabbitMqBroker::connect(options)
                .await
                .expect("connect as the worker")
        }
    }

    #[async_trait]
    impl ConformanceTarget for LeastPrivileged {
        async fn connect(&self) -> Arc<dyn Broker> {
            let admin = Arc::new(self.admin().await);
            let worker = Arc::new(self.worker(TopologyMode::Existing).await);
            Arc::new(Provisioned::new(admin, worker))
        }

        fn capabilities(&self) -> Capabilities {
            RabbitMq::shared_server().capabilities()
        }
    }

    event_bus_tests::least_privilege_conformance_tests!(
        one_test core_cases_pass_over_tls_as_a_worker_without_configure_permission,
        LeastPrivileged::start()
    );

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refusals_are_typed_errors_naming_the_cause() {
        let target = LeastPrivileged::start();
        subscribing_without_configure_permission_is_a_permission_error(&target).await;
        a_missing_queue_is_an_error_naming_it_and_the_setup_command(&target).await;
        a_wrong_password_is_a_credentials_error_without_the_password(&target).await;
        an_untrusted_certificate_is_a_certificate_error(&target).await;
        a_delayed_retry_waits_in_its_queue_and_without_it_comes_back_at_once(&target).await;
    }

    async fn subscribing_without_configure_permission_is_a_permission_error(
        target: &LeastPrivileged,
    ) {
        let worker = target.worker(TopologyMode::Create).await;
        let error = expect_refusal(
            "rabbitmq",
            AccessKind::Permission,
            &[WORKER_PASSWORD],
            worker.subscribe(&SubscriptionConfig::new("lp-payments", "billing")),
        )
        .await;
        assert!(error.to_string().contains("permission denied"), "{error}");
    }

    async fn a_missing_queue_is_an_error_naming_it_and_the_setup_command(target: &LeastPrivileged) {
        let worker = target.worker(TopologyMode::Existing).await;
        let admin = target.admin().await;
        let billing = SubscriptionConfig::new("lp-orders", "billing");
        admin
            .subscribe(&SubscriptionConfig::new("lp-orders", "audit"))
            .await
            .expect("the administrator declares the exchange and a group")
            .close()
            .await
            .unwrap();

        expect_missing(&worker, &billing, "queue `lp-orders.billing`").await;

        expect_instance_scoped_refused(&worker, "lp-orders").await;

        admin
            .subscribe(&billing)
            .await
            .expect("the administrator makes the group")
            .close()
            .await
            .unwrap();
        let listed: Vec<String> = worker
            .topology(&billing)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            listed.contains(&"queue `lp-orders.billing.retry.100ms`".to_owned()),
            "{listed:?}"
        );
        worker
            .subscribe(&billing)
            .await
            .expect("everything the subscription uses exists")
            .close()
            .await
            .unwrap();

        target
            .0
            .ctl(&["delete_queue", "-p", VHOST, "lp-orders.billing.retry.100ms"])
            .expect("delete a retry queue");
        expect_missing(&worker, &billing, "queue `lp-orders.billing.retry.100ms`").await;
    }

    async fn a_wrong_password_is_a_credentials_error_without_the_password(
        target: &LeastPrivileged,
    ) {
        let wrong = "rabbit-wrong-password-81f3";
        for user in [WORKER_USER, "nobody-here"] {
            let options = target.options(user, wrong, TopologyMode::Existing);
            expect_refusal(
                "rabbitmq",
                AccessKind::Credentials,
                &[wrong],
                RabbitMqBroker::connect(options),
            )
            .await;
        }
    }

    async fn an_untrusted_certificate_is_a_certificate_error(target: &LeastPrivileged) {
        let stranger = UnrelatedCa::new().unwrap();
        let mut options = target.options(WORKER_USER, WORKER_PASSWORD, TopologyMode::Existing);
        options.tls.ca_file = Some(stranger.file.clone());
        expect_refusal(
            "rabbitmq",
            AccessKind::Certificate,
            &[WORKER_PASSWORD],
            RabbitMqBroker::connect(options),
        )
        .await;
    }

    /// Under `existing` a nack with a delay goes through the retry queue `eventbus setup`
    /// made; when that queue is gone the message comes back at once instead of being lost.
    async fn a_delayed_retry_waits_in_its_queue_and_without_it_comes_back_at_once(
        target: &LeastPrivileged,
    ) {
        let config = SubscriptionConfig::new("lp-retries", "billing");
        let admin = target.admin().await;
        admin
            .subscribe(&config)
            .await
            .unwrap()
            .close()
            .await
            .unwrap();
        let worker = target.worker(TopologyMode::Existing).await;
        let mut subscription = worker.subscribe(&config).await.expect("subscribe");
        worker
            .publish("lp-retries", Message::new("retry me"))
            .await
            .expect("publish");
        let mut next = async || {
            tokio::time::timeout(Duration::from_secs(30), subscription.next())
                .await
                .expect("a delivery within 30 s")
                .expect("the subscription is open")
                .expect("a delivery")
        };

        let delay = Duration::from_secs(1);
        let nacked = Instant::now();
        next().await.nack(Nack::RequeueAfter(delay)).await.unwrap();
        let again = next().await;
        assert!(nacked.elapsed() >= delay * 9 / 10, "{:?}", nacked.elapsed());
        assert_eq!(again.attempt(), 2);

        target
            .0
            .ctl(&[
                "delete_queue",
                "-p",
                VHOST,
                "lp-retries.billing.retry.1000ms",
            ])
            .expect("delete the retry queue");
        again.nack(Nack::RequeueAfter(delay)).await.unwrap();
        let third = next().await;
        assert_eq!(third.message().payload.as_ref(), b"retry me");
        assert_eq!(third.attempt(), 3);
        third.ack().await.unwrap();
    }
}
