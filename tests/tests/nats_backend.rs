//! The NATS pieces outside the conformance suite, each against a nats-server of its own:
//! connection errors, headers on the wire, settling (hand-back, delayed nack, discard), a
//! crashed member, stream and consumer names, and a stream deleted behind the bus's back.
#![cfg(feature = "nats")]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_bus_brokers::nats::{NatsBroker, NatsError, NatsOptions};
use event_bus_core::envelope::ContentMode;
use event_bus_core::{
    BusError, BusSettings, Delivery, EventBus, EventEnvelope, Message, Nack, Publisher, Recorder,
    Subscriber, Subscription, SubscriptionConfig,
};
use event_bus_tests::nats_server::NatsServer;

const TIMEOUT: Duration = Duration::from_secs(30);
/// Names the crashed member's settings when the crash test runs its child process.
const CHILD_ENV: &str = "EVENT_BUS_NATS_CRASHED_MEMBER";

fn options(url: &str, ack_deadline_seconds: u64) -> NatsOptions {
    let seconds = ack_deadline_seconds.to_string();
    let bus = BusSettings::from_vars([("EVENT_BUS_ACK_DEADLINE_SECONDS", seconds.as_str())])
        .expect("settings");
    NatsOptions::from_vars([("NATS_URL", url)], &bus).expect("options")
}

async fn broker(server: &NatsServer, ack_deadline_seconds: u64) -> Arc<NatsBroker> {
    Arc::new(
        NatsBroker::connect(options(&server.url(), ack_deadline_seconds))
            .await
            .expect("connect"),
    )
}

/// A private server, a broker with an ack deadline, and one member of group `g` of a fresh topic.
struct Member {
    server: NatsServer,
    broker: Arc<NatsBroker>,
    topic: String,
    subscription: Box<dyn Subscription>,
}

impl Member {
    async fn join(topic: &str, ack_deadline_seconds: u64) -> Self {
        let server = NatsServer::start().expect("start nats-server");
        let broker = broker(&server, ack_deadline_seconds).await;
        let topic = unique(topic);
        let subscription = broker
            .subscribe(&SubscriptionConfig::new(&topic, "g"))
            .await
            .expect("subscribe");
        Self {
            server,
            broker,
            topic,
            subscription,
        }
    }

    async fn publish(&self, payload: &'static str) {
        self.broker
            .publish(&self.topic, Message::new(payload))
            .await
            .expect("publish");
    }

    async fn next(&mut self) -> Box<dyn Delivery> {
        next(self.subscription.as_mut(), TIMEOUT).await
    }

    /// A JetStream client of the member's server, beside the bus.
    async fn raw(&self) -> async_nats::jetstream::Context {
        let client = async_nats::connect(self.server.url())
            .await
            .expect("raw client");
        async_nats::jetstream::new(client)
    }

    async fn leave(self) {
        self.subscription.close().await.expect("close");
    }
}

fn unique(name: &str) -> String {
    format!("{name}-{}", uuid::Uuid::now_v7().simple())
}

fn nats_error(error: &BusError) -> &NatsError {
    match error {
        BusError::Backend { backend, source } => {
            assert_eq!(*backend, "nats");
            source.downcast_ref().expect("a NatsError")
        }
        other => panic!("not a backend error: {other:?}"),
    }
}

async fn next(subscription: &mut dyn Subscription, within: Duration) -> Box<dyn Delivery> {
    tokio::time::timeout(within, subscription.next())
        .await
        .expect("a delivery in time")
        .expect("the subscription is open")
        .expect("receiving works")
}

#[tokio::test]
async fn a_refused_connection_is_a_typed_error_naming_the_url() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("nats://127.0.0.1:{port}");
    let error = NatsBroker::connect(options(&url, 30))
        .await
        .err()
        .expect("nothing listens there");
    assert!(
        matches!(nats_error(&error), NatsError::Connect { url: named, .. } if *named == url),
        "{error}"
    );
    assert!(error.to_string().contains(&url), "{error}");
}

#[tokio::test]
async fn a_server_that_never_answers_fails_within_the_connect_timeout() {
    // Accepts connections (the kernel does) but never greets, as a hung server would.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("nats://{}", silent.local_addr().unwrap());
    let started = Instant::now();
    let error = NatsBroker::connect(options(&url, 30))
        .await
        .err()
        .expect("the server never answers");
    let waited = started.elapsed();
    assert!(
        matches!(nats_error(&error), NatsError::Unreachable { url: named, timeout } if *named == url && *timeout == Duration::from_secs(10)),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        format!("nats backend: no NATS server at {url} answered within 10s")
    );
    assert!(waited < Duration::from_secs(13), "took {waited:?}");
    drop(silent);
}

#[tokio::test]
async fn a_server_without_jetstream_is_a_clear_error() {
    let server = NatsServer::start_without_jetstream().expect("start nats-server");
    let error = NatsBroker::connect(options(&server.url(), 30))
        .await
        .err()
        .expect("JetStream is off");
    assert!(
        matches!(nats_error(&error), NatsError::NoJetStream { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("start it with `-js`"), "{error}");
}

#[tokio::test]
async fn the_envelopes_attributes_are_nats_headers_on_the_stream() {
    let server = NatsServer::start().expect("start nats-server");
    let prefix = unique("headers");
    let settings =
        BusSettings::from_vars([("EVENT_BUS_TOPIC_PREFIX", prefix.as_str())]).expect("settings");
    let bus = EventBus::new(broker(&server, 30).await, settings.clone());
    let event = EventEnvelope::builder("user.registered", serde_json::json!({"name": "Zoë"}))
        .aggregate("user", "u-42", 1)
        .tenant_id("acme")
        .build();
    bus.publish(&event).await.expect("publish");

    let client = async_nats::connect(server.url()).await.expect("raw client");
    let stream = async_nats::jetstream::new(client)
        .get_stream(settings.topic_names().topic("user.registered"))
        .await
        .expect("the topic's stream, named after it");
    let stored = stream.get_raw_message(1).await.expect("the stored message");
    let header = |name: &str| stored.headers.get(name).map(|v| v.as_str().to_owned());
    assert_eq!(
        header("Content-Type"),
        Some("application/cloudevents+json".to_owned())
    );
    assert_eq!(header("ce-id"), None, "structured mode has no ce- header");
    assert_eq!(header("tenant_id"), Some("acme".to_owned()));
    assert_eq!(header("Event-Bus-Key"), Some("u-42".to_owned()));
    assert_eq!(
        EventEnvelope::from_structured(&stored.payload).expect("the envelope"),
        event
    );
    bus.shutdown().await.expect("shutdown");

    let mut binary_settings = settings.clone();
    binary_settings.content_mode = ContentMode::Binary;
    let bus = EventBus::new(broker(&server, 30).await, binary_settings);
    bus.publish(&event).await.expect("publish in binary mode");
    let stored = stream.get_raw_message(2).await.expect("the stored message");
    let header = |name: &str| stored.headers.get(name).map(|v| v.as_str().to_owned());
    assert_eq!(header("ce-specversion"), Some("1.0".to_owned()));
    assert_eq!(header("ce-id"), Some(event.id.clone()));
    assert_eq!(header("ce-type"), Some("user.registered".to_owned()));
    assert_eq!(header("ce-tenantid"), Some("acme".to_owned()));
    assert_eq!(header("Content-Type"), Some("application/json".to_owned()));
    assert_eq!(&stored.payload[..], r#"{"name":"Zoë"}"#.as_bytes());
    bus.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn headers_nats_cannot_carry_and_odd_topic_names_still_round_trip() {
    let server = NatsServer::start().expect("start nats-server");
    let broker = broker(&server, 30).await;
    let topic = unique("orders.eu/ünïcode topic");
    let config = SubscriptionConfig::new(&topic, "group.with dots");
    let mut subscription = broker.subscribe(&config).await.expect("subscribe");
    let message = Message::new("payload")
        .with_key("key with\nnewline")
        .with_header("Nats-Msg-Id", "mine, not the server's")
        .with_header("multi\nline", "value")
        .with_header("padded", " value ")
        .with_header("plain", "grüß dich ✓");
    broker
        .publish(&topic, message.clone())
        .await
        .expect("publish");
    broker
        .publish(&topic, message.clone())
        .await
        .expect("the same Nats-Msg-Id is not deduplicated by the server");
    for _ in 0..2 {
        let delivery = next(subscription.as_mut(), TIMEOUT).await;
        assert_eq!(delivery.message(), &message);
        delivery.ack().await.expect("ack");
    }
    subscription.close().await.expect("close");
}

#[tokio::test]
async fn a_dropped_delivery_is_handed_back_at_once() {
    // Well beyond the wait for the delivery: only a hand-back brings the message back in time.
    let mut member = Member::join("dropped", 120).await;
    member.publish("once").await;
    let first = member.next().await;
    assert_eq!(first.attempt(), 1);
    drop(first);
    let again = member.next().await;
    assert_eq!(again.message().payload.as_ref(), b"once");
    assert_eq!(again.attempt(), 2, "JetStream counted the second delivery");
    again.ack().await.expect("ack");
    member.leave().await;
}

#[tokio::test]
async fn a_delayed_nack_comes_back_after_its_delay() {
    const DELAY: Duration = Duration::from_millis(1500);
    let mut member = Member::join("delayed", 120).await;
    member.publish("later").await;
    let first = member.next().await;
    let nacked_at = Instant::now();
    first
        .nack(Nack::RequeueAfter(DELAY))
        .await
        .expect("nack with delay");
    let again = member.next().await;
    let waited = nacked_at.elapsed();
    assert_eq!(again.attempt(), 2);
    assert!(
        waited >= DELAY,
        "redelivered after {waited:?}, before its delay"
    );
    assert!(
        waited < Duration::from_secs(60),
        "redelivered after {waited:?}, not by the delay but the ack wait"
    );
    again.ack().await.expect("ack");
    member.leave().await;
}

#[tokio::test]
async fn ack_and_discard_leave_nothing_pending_for_the_group() {
    let mut member = Member::join("settled", 120).await;
    member.publish("ack me").await;
    member.publish("discard me").await;
    for _ in 0..2 {
        let delivery = member.next().await;
        if delivery.message().payload.as_ref() == b"ack me" {
            delivery.ack().await.expect("ack");
        } else {
            delivery.nack(Nack::Discard).await.expect("discard");
        }
    }
    // Settling waited for the server's confirmation, so the consumer's state shows it now.
    let info = member
        .raw()
        .await
        .get_stream(&member.topic)
        .await
        .expect("the topic's stream, named after it")
        .consumer_info("g")
        .await
        .expect("the group's durable consumer");
    assert_eq!(info.num_ack_pending, 0, "{info:?}");
    assert_eq!(info.num_pending, 0, "{info:?}");
    assert_eq!(info.ack_floor.stream_sequence, 2, "{info:?}");
    member.leave().await;
}

#[tokio::test]
async fn a_deleted_stream_is_created_again_by_the_next_publish() {
    let mut member = Member::join("deleted", 30).await;
    member.publish("first").await;
    let first = member.next().await;
    assert_eq!(first.message().payload.as_ref(), b"first");
    first.ack().await.expect("ack");
    member
        .raw()
        .await
        .delete_stream(&member.topic)
        .await
        .expect("delete the stream behind the bus's back");
    member.publish("second").await;
    let delivery = member.next().await;
    assert_eq!(delivery.message().payload.as_ref(), b"second");
    delivery.ack().await.expect("ack");
    member.leave().await;
}

/// A member killed with SIGKILL while it holds a delivery cannot hand it back: the group's
/// next member gets it once the ack deadline (the consumer's ack wait) has passed, not before.
#[tokio::test]
async fn a_crashed_members_delivery_returns_after_the_ack_deadline() {
    const ACK_DEADLINE: u64 = 3;
    let server = NatsServer::start().expect("start nats-server");
    let broker = broker(&server, ACK_DEADLINE).await;
    let topic = unique("crash");
    let config = SubscriptionConfig::new(&topic, "g");
    // The group's consumer exists before the child joins it.
    broker
        .subscribe(&config)
        .await
        .expect("subscribe")
        .close()
        .await
        .expect("close");
    broker
        .publish(&topic, Message::new("held by the crashed member"))
        .await
        .expect("publish");

    let mut child = Command::new(std::env::current_exe().expect("this test binary"))
        .args(["crashed_member", "--exact", "--ignored", "--nocapture"])
        .env(CHILD_ENV, format!("{} {topic}", server.url()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the member process");
    let stdout = child.stdout.take().expect("piped");
    let received = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line == "received attempt 1")
    });
    let received = tokio::time::timeout(TIMEOUT, received)
        .await
        .expect("the member receives in time")
        .expect("reader");
    assert!(received, "the member process ended without its delivery");
    let held_since = Instant::now();
    let killed = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    child.wait().expect("reap the member process");

    let mut survivor = broker.subscribe(&config).await.expect("subscribe");
    let delivery = next(survivor.as_mut(), TIMEOUT).await;
    let waited = held_since.elapsed();
    assert_eq!(
        delivery.message().payload.as_ref(),
        b"held by the crashed member"
    );
    assert_eq!(delivery.attempt(), 2);
    assert!(
        waited >= Duration::from_secs(ACK_DEADLINE) - Duration::from_millis(500),
        "redelivered {waited:?} after the crash, before the ack deadline"
    );
    delivery.ack().await.expect("ack");
    survivor.close().await.expect("close");
}

/// The member process of the crash test: receives one delivery, says so, and waits to be killed.
#[tokio::test]
#[ignore = "the crashed member of a_crashed_members_delivery_returns_after_the_ack_deadline, run as its child process"]
async fn crashed_member() {
    let spec = std::env::var(CHILD_ENV).expect("started by the crash test");
    let (url, topic) = spec.split_once(' ').expect("url and topic");
    let broker = NatsBroker::connect(options(url, 3)).await.expect("connect");
    let mut subscription = broker
        .subscribe(&SubscriptionConfig::new(topic, "g"))
        .await
        .expect("subscribe");
    let delivery = next(subscription.as_mut(), TIMEOUT).await;
    println!("received attempt {}", delivery.attempt());
    std::future::pending::<()>().await;
}

#[tokio::test]
async fn events_flow_through_the_bus_on_a_private_server() {
    let server = NatsServer::start().expect("start nats-server");
    let prefix = unique("flow");
    let settings =
        BusSettings::from_vars([("EVENT_BUS_TOPIC_PREFIX", prefix.as_str())]).expect("settings");
    let bus = EventBus::new(broker(&server, 30).await, settings);
    assert_eq!(bus.broker().name(), "nats");
    let recorder = Recorder::new();
    bus.subscribe(
        bus.subscription("order.placed", "billing"),
        recorder.clone(),
    )
    .await
    .expect("subscribe");
    let events: Vec<_> = (0..20)
        .map(|n| EventEnvelope::builder("order.placed", serde_json::json!({"n": n})).build())
        .collect();
    let results = bus.publish_batch(&events).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let received = recorder.wait_for(20, TIMEOUT).await.expect("all arrive");
    assert_eq!(received.len(), 20);
    bus.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_member_creates_its_deleted_consumer_again() {
    let mut member = Member::join("consumer-deleted", 30).await;
    let deleted = member
        .raw()
        .await
        .get_stream(&member.topic)
        .await
        .expect("stream")
        .delete_consumer("g")
        .await
        .expect("delete the consumer behind the member's back");
    assert!(deleted.success);
    member.publish("after the deletion").await;
    let deadline = Instant::now() + TIMEOUT;
    let delivery = loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, member.subscription.next()).await {
            Ok(Some(Ok(delivery))) => break delivery,
            Ok(Some(Err(error))) => eprintln!("reported while recovering: {error}"),
            Ok(None) => panic!("the subscription ended"),
            Err(_) => panic!("no delivery after the consumer was deleted"),
        }
    };
    assert_eq!(delivery.message().payload.as_ref(), b"after the deletion");
    delivery.ack().await.expect("ack");
    member.leave().await;
}
