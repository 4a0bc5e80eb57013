//! The conformance suite on Google Cloud Pub/Sub, against the emulator at PUBSUB_EMULATOR_HOST
//! (default 127.0.0.1:8085); every case has topics and subscriptions of its own prefix.
#![cfg(feature = "pubsub")]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use event_bus_brokers::pubsub::{PubSubBroker, PubSubOptions};
use event_bus_core::conformance::ConformanceTarget;
use event_bus_core::{Broker, Capabilities, TopologyMode};

/// The emulator, with ordering keys on, as `EVENT_BUS_ENABLE_ORDERING=true` sets them.
struct Emulator {
    host: String,
}

impl Emulator {
    fn shared() -> Self {
        Self {
            host: std::env::var("PUBSUB_EMULATOR_HOST")
                .unwrap_or_else(|_| "127.0.0.1:8085".to_owned()),
        }
    }
}

/// The emulator's options for a case: ordering keys and batching on, a 30 s ack deadline.
fn options(host: &str, topology: TopologyMode) -> PubSubOptions {
    PubSubOptions {
        project_id: "conformance".to_owned(),
        emulator_host: Some(host.to_owned()),
        ordering_keys: true,
        batching: true,
        ack_deadline: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(5),
        native_dead_letter: true,
        dead_letters: None,
        topology,
    }
}

#[async_trait]
impl ConformanceTarget for Emulator {
    async fn connect(&self) -> Arc<dyn Broker> {
        let options = options(&self.host, TopologyMode::Create);
        Arc::new(
            PubSubBroker::connect(options)
                .await
                .expect("connect to the Pub/Sub emulator"),
        )
    }

    /// The emulator keeps everything in memory, so a restart loses it: not restarted here.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            consumer_groups: true,
            per_key_ordering: true,
            persistent: false,
            new_subscriber_receives_old_messages: false,
            can_restart_server: false,
        }
    }
}

event_bus_core::conformance_tests!(Emulator::shared());

/// `EVENT_BUS_TOPOLOGY=existing` on the emulator: the core cases pass on topics and
/// subscriptions an administrator made; a run on what `eventbus setup` made makes no
/// administrative request at all (counted from the backend's log of them); a missing
/// subscription or topic is a clear error naming it and `eventbus setup`.
mod least_privilege {
    use std::sync::Mutex;

    use event_bus_brokers::pubsub::ADMIN_LOG_TARGET;
    use event_bus_core::{
        BusSettings, EventBus, EventEnvelope, HandlerError, Publisher, Recorder, Subscriber,
        SubscriptionConfig, TopologyMode, handler_fn,
    };
    use event_bus_tests::provisioned::Provisioned;
    use event_bus_tests::refusals::assert_missing;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    async fn broker(host: &str, topology: TopologyMode) -> PubSubBroker {
        PubSubBroker::connect(options(host, topology))
            .await
            .expect("connect to the Pub/Sub emulator")
    }

    /// The emulator seen by a least-privileged identity, an administrator creating first.
    struct LeastPrivileged(Emulator);

    #[async_trait]
    impl ConformanceTarget for LeastPrivileged {
        async fn connect(&self) -> Arc<dyn Broker> {
            let admin = broker(&self.0.host, TopologyMode::Create).await;
            let worker = broker(&self.0.host, TopologyMode::Existing).await;
            Arc::new(Provisioned::new(Arc::new(admin), Arc::new(worker)))
        }

        fn capabilities(&self) -> Capabilities {
            self.0.capabilities()
        }
    }

    event_bus_tests::least_privilege_conformance_tests!(LeastPrivileged(Emulator::shared()));

    /// Counts the backend's administrative requests, by name.
    #[derive(Clone, Default)]
    struct AdminCalls(Arc<Mutex<Vec<String>>>);

    impl AdminCalls {
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut self.0.lock().unwrap())
        }
    }

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for AdminCalls {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            if event.metadata().target() == ADMIN_LOG_TARGET {
                let mut fields = String::new();
                event.record(
                    &mut |field: &tracing::field::Field, value: &dyn std::fmt::Debug| {
                        fields.push_str(&format!("{}={value:?} ", field.name()));
                    },
                );
                self.0.lock().unwrap().push(fields);
            }
        }
    }

    #[tokio::test]
    async fn a_run_on_what_setup_made_makes_no_administrative_request() {
        let calls = AdminCalls::default();
        // A current-thread runtime: every task of the test runs under this subscriber.
        let _guard =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(calls.clone()));
        let host = Emulator::shared().host;
        let prefix = format!("lp-{}", uuid::Uuid::now_v7().simple());
        // A keeping group of its own: the default one's name is taken on other cases' topics.
        let keeper = format!("{prefix}-dead-letters");
        let settings = BusSettings::from_vars([
            ("EVENT_BUS_TOPIC_PREFIX", prefix.as_str()),
            ("DEAD_LETTER_SUBSCRIPTION", keeper.as_str()),
            ("DEAD_LETTER_MAX_RETRIES", "2"),
        ])
        .unwrap();

        let admin = EventBus::new(
            Arc::new(broker(&host, TopologyMode::Create).await),
            settings.clone(),
        );
        let orders = admin.subscription("order.placed", "billing");
        let dead_letters = SubscriptionConfig::new(
            &settings.dead_letter_topic,
            &settings.dead_letter_subscription,
        );
        for config in [&orders, &dead_letters] {
            admin.broker().provision(config).await.unwrap();
        }
        assert!(
            !calls.take().is_empty(),
            "setting up makes administrative requests, and they are counted"
        );

        let worker = EventBus::new(
            Arc::new(broker(&host, TopologyMode::Existing).await),
            settings.clone(),
        );
        let handled = Recorder::new();
        let recorder = handled.clone();
        let handler = handler_fn(move |event: EventEnvelope| {
            let recorder = recorder.clone();
            async move {
                if event.payload["poison"] == true {
                    return Err(HandlerError::permanent("poison"));
                }
                recorder.record(&event);
                Ok(())
            }
        });
        let handle = worker.subscribe(orders.clone(), handler).await.unwrap();
        for n in 0..3 {
            let payload = serde_json::json!({ "n": n, "poison": n == 2 });
            worker
                .publish(&EventEnvelope::builder("order.placed", payload).build())
                .await
                .unwrap();
        }
        handled.wait_for(2, Duration::from_secs(60)).await.unwrap();
        let mut kept = worker.broker().subscribe(&dead_letters).await.unwrap();
        let dead_letter = tokio::time::timeout(Duration::from_secs(60), kept.next())
            .await
            .expect("the poison event is dead-lettered")
            .expect("open")
            .expect("a delivery");
        dead_letter.ack().await.unwrap();
        kept.close().await.unwrap();
        handle.shutdown().await;
        worker.shutdown().await.unwrap();
        assert_eq!(
            calls.take(),
            Vec::<String>::new(),
            "the least-privileged run made administrative requests"
        );
        admin.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn a_missing_subscription_or_topic_is_an_error_naming_it_and_the_setup_command() {
        let host = Emulator::shared().host;
        let worker = broker(&host, TopologyMode::Existing).await;
        let topic = format!("lp-missing-{}", uuid::Uuid::now_v7().simple());
        let error = worker
            .subscribe(&SubscriptionConfig::new(&topic, format!("{topic}-billing")))
            .await
            .err()
            .expect("the subscription does not exist");
        assert_missing(&error, &format!("subscription `{topic}-billing`"));

        let message = event_bus_core::Message::new(b"{}".to_vec());
        let error = worker
            .publish(&topic, message)
            .await
            .expect_err("the topic does not exist");
        assert_missing(&error, &format!("topic `{topic}`"));
    }
}
