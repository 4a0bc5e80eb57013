//! Kafka as in production, against a private Tansu that speaks TLS only and requires SASL
//! SCRAM-SHA-512 (`TansuServer::start_secure`): the bus connects with `KAFKA_PROPERTY_*`
//! variables and publishes and consumes; a wrong password and an untrusted certificate are
//! typed access errors within 10 s; with `EVENT_BUS_TOPOLOGY=existing` the bus creates no
//! topic, passes the core conformance cases on topics an administrator made, and names a
//! missing topic and the command that creates it.
#![cfg(feature = "kafka")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use event_bus_brokers::ConnectError;
use event_bus_brokers::kafka::{KafkaBroker, KafkaOptions};
use event_bus_core::conformance::ConformanceTarget;
use event_bus_core::{
    AccessKind, Broker, BusError, BusSettings, Capabilities, EventEnvelope, Message, Publisher,
    Recorder, Subscriber, SubscriptionConfig, TopologyItem, TopologyMode,
};
use event_bus_tests::certificates::UnrelatedCa;
use event_bus_tests::kafka_server::{SASL_PASSWORD, TansuServer};
use event_bus_tests::provisioned::Provisioned;
use event_bus_tests::refusals::{
    assert_missing, expect_instance_scoped_refused, expect_missing, expect_refusal,
};

const TIMEOUT: Duration = Duration::from_secs(30);

fn secure_server() -> TansuServer {
    TansuServer::start_secure().expect("start Tansu with TLS and SASL")
}

/// The bus's variables for `server` with `password`, the test settings and `extra`.
fn settings(server: &TansuServer, password: &str, extra: &[(&str, &str)]) -> BusSettings {
    let mut vars: Vec<(String, String)> = server
        .client_variables(password)
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    for (name, value) in [
        ("EVENT_BUS_TYPE", "kafka"),
        ("KAFKA_SESSION_TIMEOUT_MS", "6000"),
        ("EVENT_BUS_ACK_DEADLINE_SECONDS", "10"),
    ]
    .iter()
    .chain(extra)
    {
        vars.push(((*name).to_owned(), (*value).to_owned()));
    }
    BusSettings::from_vars(vars).expect("settings")
}

fn options(server: &TansuServer, topology: TopologyMode) -> KafkaOptions {
    let mut options =
        KafkaOptions::from_settings(&settings(server, SASL_PASSWORD, &[])).expect("options");
    options.topology = topology;
    options
}

fn unique(name: &str) -> String {
    format!("{name}-{}", uuid::Uuid::now_v7().simple())
}

/// The backend's error inside a failed connect.
fn connect_error(error: ConnectError) -> BusError {
    match error {
        ConnectError::Connect { source, .. } => source,
        other => panic!("not a connect error: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_publishes_and_consumes_over_sasl_ssl_with_scram() {
    let server = secure_server();
    let prefix = unique("secure");
    let bus = event_bus_brokers::connect(settings(
        &server,
        SASL_PASSWORD,
        &[("EVENT_BUS_TOPIC_PREFIX", &prefix)],
    ))
    .await
    .expect("connect over SASL_SSL");
    let recorder = Recorder::new();
    bus.subscribe(
        bus.subscription("order.placed", "billing"),
        recorder.clone(),
    )
    .await
    .expect("subscribe");
    let event = EventEnvelope::builder("order.placed", serde_json::json!({"total": 42}))
        .aggregate("order", "o-1", 1)
        .build();
    bus.publish(&event).await.expect("publish");
    assert_eq!(recorder.wait_for(1, TIMEOUT).await.unwrap()[0], event);
    bus.shutdown().await.unwrap();
}

/// Connects with `vars` on top of the secure settings and expects a credentials refusal
/// within the bound, showing no password.
async fn refused_credentials(server: &TansuServer, password: &str, vars: &[(&str, &str)]) {
    let connecting = async {
        event_bus_brokers::connect(settings(server, password, vars))
            .await
            .map_err(connect_error)
    };
    expect_refusal(
        "kafka",
        AccessKind::Credentials,
        &[password, SASL_PASSWORD],
        connecting,
    )
    .await;
}

#[tokio::test]
async fn a_wrong_password_or_an_unknown_user_is_a_credentials_error_within_10_s() {
    let server = secure_server();
    refused_credentials(&server, "kafka-wrong-password-6f0d", &[]).await;
    refused_credentials(
        &server,
        SASL_PASSWORD,
        &[("KAFKA_PROPERTY_SASL_USERNAME", "nobody")],
    )
    .await;
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_certificate_error_within_10_s() {
    let server = secure_server();
    let stranger = UnrelatedCa::new().unwrap();
    let stranger = stranger.file.display().to_string();
    let connecting = async {
        event_bus_brokers::connect(settings(
            &server,
            SASL_PASSWORD,
            &[("KAFKA_PROPERTY_SSL_CA_LOCATION", &stranger)],
        ))
        .await
        .map_err(connect_error)
    };
    expect_refusal(
        "kafka",
        AccessKind::Certificate,
        &[SASL_PASSWORD],
        connecting,
    )
    .await;
}

mod least_privilege {
    use super::*;

    /// A secure broker, with an administrator (`create`) provisioning what an
    /// `EVENT_BUS_TOPOLOGY=existing` broker then uses.
    struct LeastPrivileged(TansuServer);

    impl LeastPrivileged {
        async fn broker(&self, topology: TopologyMode) -> KafkaBroker {
            KafkaBroker::connect(options(&self.0, topology))
                .await
                .expect("connect")
        }
    }

    #[async_trait]
    impl ConformanceTarget for LeastPrivileged {
        async fn connect(&self) -> Arc<dyn Broker> {
            let admin = self.broker(TopologyMode::Create).await;
            let worker = self.broker(TopologyMode::Existing).await;
            Arc::new(Provisioned::new(Arc::new(admin), Arc::new(worker)))
        }

        fn capabilities(&self) -> Capabilities {
            KafkaBroker::CAPABILITIES
        }
    }

    fn server() -> LeastPrivileged {
        LeastPrivileged(secure_server())
    }

    event_bus_tests::least_privilege_conformance_tests!(server());

    fn message() -> Message {
        Message::new(b"{}".to_vec())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_topic_is_an_error_naming_it_and_the_setup_command() {
        let target = server();
        let worker = target.broker(TopologyMode::Existing).await;
        let admin = target.broker(TopologyMode::Create).await;
        let billing = SubscriptionConfig::new("lp-orders", "billing").dead_letter_topic("lp-dead");

        expect_missing(&worker, &billing, "topic `lp-orders`").await;

        let started = Instant::now();
        let error = worker
            .publish("lp-orders", message())
            .await
            .expect_err("publishing to a missing topic");
        assert_missing(&error, "topic `lp-orders`");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );

        // Another group's subscription makes the topic and its own retry topic only.
        admin
            .subscribe(&SubscriptionConfig::new("lp-orders", "audit"))
            .await
            .unwrap()
            .close()
            .await
            .unwrap();
        worker
            .publish("lp-orders", message())
            .await
            .expect("the topic exists");
        expect_missing(&worker, &billing, "topic `lp-orders.retry.billing`").await;
        expect_instance_scoped_refused(&worker, "lp-orders").await;

        // What setup does: subscribing once in create mode makes everything billing uses.
        assert_eq!(
            worker.topology(&billing),
            vec![
                TopologyItem::new("topic", "lp-orders"),
                TopologyItem::new("topic", "lp-orders.retry.billing"),
                TopologyItem::new("topic", "lp-dead"),
                TopologyItem::new("consumer group", "billing"),
            ]
        );
        admin
            .subscribe(&billing)
            .await
            .unwrap()
            .close()
            .await
            .unwrap();
        worker
            .subscribe(&billing)
            .await
            .expect("setup made everything")
            .close()
            .await
            .unwrap();
        worker
            .publish("lp-dead", message())
            .await
            .expect("the dead-letter topic exists");
        worker.close().await.unwrap();
        admin.close().await.unwrap();
    }
}
