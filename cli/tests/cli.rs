//! The real `eventbus` binary against the Redis backend (127.0.0.1:6379) and the PostgreSQL
//! store (127.0.0.1:5432), each test under its own topic prefix and schema.

use std::sync::Arc;

use assert_cmd::Command;
use event_bus_core::EventEnvelope;
use event_bus_core::dead_letter::headers;
use event_store::store::{EventStore, ExpectedVersion, StreamId};
use event_store_postgres::PgEventStore;
use predicates::prelude::*;

const REDIS_URL: &str = "redis://127.0.0.1:6379";
const DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A topic prefix and store schema of one test.
struct Env {
    prefix: String,
    schema: String,
}

impl Env {
    fn new() -> Self {
        let id = uuid::Uuid::now_v7().simple();
        Self {
            prefix: format!("evbus-cli-{id}"),
            schema: format!("evbus_t_{id}"),
        }
    }

    fn eventbus(&self) -> Command {
        let mut command = Command::cargo_bin("eventbus").unwrap();
        command
            .env("EVENT_BUS_TYPE", "redis")
            .env("REDIS_EVENT_URL", REDIS_URL)
            .env("EVENT_BUS_TOPIC_PREFIX", &self.prefix)
            .env("DATABASE_URL", DATABASE_URL)
            .env("EVENT_STORE_SCHEMA", &self.schema)
            .timeout(std::time::Duration::from_secs(60));
        command
    }

    fn run(&self, args: &[&str]) -> String {
        self.run_with(&[], args)
    }

    /// Runs `eventbus` with `vars` set on top of the test's own.
    fn run_with(&self, vars: &[(&str, &str)], args: &[&str]) -> String {
        let output = self
            .eventbus()
            .envs(vars.iter().copied())
            .args(args)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        String::from_utf8(output).unwrap()
    }

    async fn redis_broker(&self) -> Arc<dyn event_bus_core::Broker> {
        let settings = event_bus_core::BusSettings::from_vars([
            ("EVENT_BUS_TYPE", "redis"),
            ("REDIS_EVENT_URL", REDIS_URL),
            ("EVENT_BUS_TOPIC_PREFIX", self.prefix.as_str()),
        ])
        .unwrap();
        event_bus_brokers::connect_broker(&settings).await.unwrap()
    }
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_from_stdin_then_tail_on_redis() {
    let env = Env::new();
    let id = env
        .eventbus()
        .args([
            "publish",
            "--type",
            "user.registered",
            "--aggregate",
            "user:u-1",
        ])
        .write_stdin(r#"{"email":"zoë@example.com"}"#)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let id = String::from_utf8(id).unwrap().trim().to_owned();
    let tailed = json_lines(&env.run(&[
        "tail",
        "user.registered",
        "--count",
        "1",
        "--idle-secs",
        "20",
    ]));
    assert_eq!(tailed.len(), 1);
    assert_eq!(tailed[0]["id"], id);
    assert_eq!(tailed[0]["subject"], "u-1");
    assert_eq!(tailed[0]["data"]["email"], "zoë@example.com");
}

#[test]
fn bad_input_and_unreachable_servers_are_one_line_errors() {
    let env = Env::new();
    let one_line_error = |starts: &'static str| {
        predicate::str::starts_with(starts)
            .and(predicate::function(|s: &str| s.lines().count() == 1))
    };
    env.eventbus()
        .args(["publish", "--type", "x.y", "not json"])
        .assert()
        .failure()
        .stderr(one_line_error("error: the input is not valid JSON"));
    env.eventbus()
        .args(["publish", r#"{"a":1}"#])
        .assert()
        .failure()
        .stderr(one_line_error(
            "error: the input is not a CloudEvents envelope",
        ));
    env.eventbus()
        .env("EVENT_BUS_TYPE", "carrier-pigeon")
        .args(["publish", "--type", "x.y", "{}"])
        .assert()
        .failure()
        .stderr(one_line_error(
            "error: unknown EVENT_BUS_TYPE `carrier-pigeon`; this build has: memory, redis, kafka, rabbitmq, pubsub, nats",
        ));
    env.eventbus()
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/postgres")
        .args(["store", "stats"])
        .assert()
        .failure()
        .stderr(
            one_line_error("error: postgres event store:").and(predicate::str::contains("refused")),
        );
    env.eventbus()
        .args(["dlq", "redrive"])
        .assert()
        .failure()
        .stderr(one_line_error("error: say which dead letters"));
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_creates_the_consumer_groups() {
    let env = Env::new();
    let out = env.run(&[
        "setup",
        "order.placed",
        "--handler",
        "billing",
        "--handler",
        "audit",
    ]);
    let billing = format!("{}-sub-order-placed-billing", env.prefix);
    assert!(out.contains(&billing), "{out}");
    let mut redis = redis::Client::open(REDIS_URL)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let topic = format!("{}-order-placed", env.prefix);
    let groups: redis::streams::StreamInfoGroupsReply =
        redis::AsyncCommands::xinfo_groups(&mut redis, &topic)
            .await
            .unwrap();
    let names: Vec<_> = groups.groups.iter().map(|g| g.name.clone()).collect();
    assert!(names.contains(&billing), "{names:?}");
    assert!(
        names.contains(&format!("{}-sub-order-placed-audit", env.prefix)),
        "{names:?}"
    );
}

/// `eventbus setup` creates what a least-privileged service (`EVENT_BUS_TOPOLOGY=existing`)
/// needs, even with that switch in its environment, and lists it; the service then finds it,
/// and is told what is missing and how to create it otherwise.
#[tokio::test(flavor = "multi_thread")]
async fn setup_provisions_what_a_least_privileged_service_uses() {
    let env = Env::new();
    let existing = [("EVENT_BUS_TOPOLOGY", "existing")];
    let out = env.run_with(
        &existing,
        &["setup", "order.placed", "--handler", "billing"],
    );
    let topic = format!("{}-order-placed", env.prefix);
    let billing = format!("{}-sub-order-placed-billing", env.prefix);
    assert!(
        out.contains(&format!("ready: redis stream `{topic}`")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "ready: redis consumer group `{billing}` of stream `{topic}`"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "ready: redis consumer group `eventbus-dead-letters` of stream `{}-dead-letter`",
            env.prefix
        )),
        "{out}"
    );

    let settings = event_bus_core::BusSettings::from_vars([
        ("EVENT_BUS_TYPE", "redis"),
        ("REDIS_EVENT_URL", REDIS_URL),
        ("EVENT_BUS_TOPIC_PREFIX", env.prefix.as_str()),
        ("EVENT_BUS_TOPOLOGY", "existing"),
    ])
    .unwrap();
    let bus = event_bus_brokers::connect(settings).await.unwrap();
    let recorder = event_bus_core::Recorder::new();
    bus.subscribe(
        bus.subscription("order.placed", "billing"),
        recorder.clone(),
    )
    .await
    .expect("setup created the group");
    let error = bus
        .subscribe(bus.subscription("order.placed", "audit"), recorder.clone())
        .await
        .err()
        .expect("nobody created the audit group");
    let shown = error.to_string();
    assert!(shown.contains("sub-order-placed-audit"), "{shown}");
    assert!(shown.contains("eventbus setup"), "{shown}");
    bus.shutdown().await.unwrap();
}

/// On Kafka over SASL_SSL (a private Tansu requiring SCRAM-SHA-512), `eventbus setup` creates
/// the topic, the group's retry topic and the dead-letter topic and lists them with the group;
/// a service with `EVENT_BUS_TOPOLOGY=existing` then publishes and handles events, and is told
/// what is missing for a handler nobody set up.
#[tokio::test(flavor = "multi_thread")]
async fn setup_provisions_kafka_topics_for_a_least_privileged_service() {
    use event_bus_tests::kafka_server::{SASL_PASSWORD, TansuServer};
    let server = TansuServer::start_secure().expect("start Tansu with TLS and SASL");
    let env = Env::new();
    let mut vars: Vec<(&str, String)> = server.client_variables(SASL_PASSWORD);
    vars.extend([
        ("EVENT_BUS_TYPE", "kafka".to_owned()),
        ("EVENT_BUS_TOPIC_PREFIX", env.prefix.clone()),
        ("EVENT_BUS_TOPOLOGY", "existing".to_owned()),
        ("KAFKA_SESSION_TIMEOUT_MS", "6000".to_owned()),
    ]);
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = env.run_with(
        &borrowed,
        &["setup", "order.placed", "--handler", "billing"],
    );
    let topic = format!("{}-order-placed", env.prefix);
    let billing = format!("{}-sub-order-placed-billing", env.prefix);
    for item in [
        format!("ready: kafka topic `{topic}`"),
        format!("ready: kafka topic `{topic}.retry.{billing}`"),
        format!("ready: kafka topic `{}-dead-letter`", env.prefix),
        format!("ready: kafka consumer group `{billing}`"),
    ] {
        assert!(out.contains(&item), "{item} in {out}");
    }

    let bus = event_bus_brokers::connect(event_bus_core::BusSettings::from_vars(vars).unwrap())
        .await
        .expect("connect with least privilege");
    let recorder = event_bus_core::Recorder::new();
    bus.subscribe(
        bus.subscription("order.placed", "billing"),
        recorder.clone(),
    )
    .await
    .expect("setup created the topics");
    let event = EventEnvelope::builder("order.placed", serde_json::json!({"total": 7}))
        .aggregate("order", "o-1", 1)
        .build();
    bus.publish(&event)
        .await
        .expect("publish to the topic setup made");
    let handled = recorder
        .wait_for(1, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(handled[0], event);
    let error = bus
        .subscribe(bus.subscription("order.placed", "audit"), recorder.clone())
        .await
        .err()
        .expect("nobody created the audit group's retry topic");
    let shown = error.to_string();
    assert!(
        shown.contains(&format!(
            "topic `{topic}.retry.{}-sub-order-placed-audit`",
            env.prefix
        )),
        "{shown}"
    );
    assert!(shown.contains("eventbus setup"), "{shown}");
    bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_are_listed_shown_redriven_and_discarded() {
    let env = Env::new();
    let broker = env.redis_broker().await;
    let orders = format!("{}-orders", env.prefix);
    let mut events = Vec::new();
    for (event_type, reason) in [
        ("order.placed", "permanent-failure"),
        ("order.placed", "permanent-failure"),
        ("order.paid", "oversize"),
    ] {
        let event =
            EventEnvelope::builder(event_type, serde_json::json!({ "n": events.len() })).build();
        let message = event
            .to_message()
            .unwrap()
            .with_header(headers::REASON, reason)
            .with_header(headers::ERROR, "boom")
            .with_header(headers::ATTEMPTS, "5")
            .with_header(headers::ORIGINAL_TOPIC, orders.clone())
            .with_header(headers::SUBSCRIPTION, "billing")
            .with_header(headers::FIRST_FAILURE_AT, "2026-01-01T00:00:00.000Z");
        broker
            .publish(&format!("{}-dead-letter", env.prefix), message)
            .await
            .unwrap();
        events.push(event);
    }

    let list = env.run(&["dlq", "list"]);
    assert!(list.ends_with("3 dead letters\n"), "{list}");
    let oversize_line = list.lines().find(|l| l.contains("oversize")).unwrap();
    let oversize_id = oversize_line.split_whitespace().next().unwrap().to_owned();

    let shown: serde_json::Value =
        serde_json::from_str(&env.run(&["dlq", "show", &oversize_id])).unwrap();
    assert_eq!(shown["reason"], "oversize");
    assert_eq!(shown["event_id"], events[2].id.to_string());
    assert_eq!(shown["payload"]["data"]["n"], 2);

    let stats = env.run(&["dlq", "stats"]);
    assert!(stats.contains("parked: 3"), "{stats}");
    assert!(stats.contains("permanent-failure: 2"), "{stats}");
    assert!(stats.contains("order.paid: 1"), "{stats}");

    let dry = env.run(&["dlq", "redrive", "--type", "order.placed", "--dry-run"]);
    assert!(dry.ends_with("would redrive 2 dead letters\n"), "{dry}");
    assert!(
        env.run(&["dlq", "list", "--no-pull"])
            .ends_with("3 dead letters\n")
    );

    let redriven = env.run(&["dlq", "redrive", &oversize_id]);
    assert_eq!(redriven, "redrove 1 dead letters\n");
    let tailed = json_lines(&env.run(&[
        "tail",
        "--topic",
        &orders,
        "--count",
        "1",
        "--idle-secs",
        "20",
    ]));
    assert_eq!(tailed[0]["id"], events[2].id.to_string());

    let discarded = env.run(&["dlq", "discard", "--all"]);
    assert_eq!(discarded, "discarded 2 dead letters\n");
    assert_eq!(env.run(&["dlq", "list", "--no-pull"]), "0 dead letters\n");
    env.eventbus()
        .args(["dlq", "show", &oversize_id])
        .assert()
        .failure()
        .stderr(predicate::str::starts_with(
            "error: no parked dead letter with id",
        ));
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_publishes_stored_events_marked_as_replays() {
    let env = Env::new();
    let store = PgEventStore::connect(DATABASE_URL, &env.schema)
        .await
        .unwrap();
    let events: Vec<_> = (0..5)
        .map(|n| {
            let event_type = if n % 2 == 0 {
                "order.placed"
            } else {
                "order.paid"
            };
            EventEnvelope::builder(event_type, serde_json::json!({ "n": n })).build()
        })
        .collect();
    store
        .append(
            &StreamId::new("order", "o-1"),
            ExpectedVersion::NoStream,
            events,
        )
        .await
        .unwrap();

    let stats = env.run(&["store", "stats"]);
    assert!(
        stats.contains("events: 5\n") && stats.contains("order.placed: 3"),
        "{stats}"
    );
    assert_eq!(
        env.run(&["replay", "--type", "order.placed", "--dry-run"]),
        "would replay 3 events\n"
    );
    let replayed = env.run(&["replay", "--type", "order.placed", "--batch", "2"]);
    assert!(replayed.starts_with("replayed 3 events"), "{replayed}");
    let tailed =
        json_lines(&env.run(&["tail", "order.placed", "--count", "3", "--idle-secs", "20"]));
    let ns: Vec<_> = tailed
        .iter()
        .map(|e| e["data"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(ns, [0, 2, 4]);
    assert!(tailed.iter().all(|e| e["headers"]["x-replayed"] == "true"));
}

/// Issue 17, items 2 and 8: on Pub/Sub (the emulator at `PUBSUB_EMULATOR_HOST`) a dead letter
/// is kept by the subscription created with the dead-letter topic, and `eventbus dlq list`
/// finds it.
#[tokio::test(flavor = "multi_thread")]
async fn a_pubsub_dead_letter_is_listed_by_dlq_list() {
    let env = Env::new();
    let emulator =
        std::env::var("PUBSUB_EMULATOR_HOST").unwrap_or_else(|_| "127.0.0.1:8085".to_owned());
    let vars = [
        ("EVENT_BUS_TYPE", "pubsub"),
        ("PUBSUB_EMULATOR_HOST", emulator.as_str()),
        ("GCP_PROJECT_ID", "cli-tests"),
        ("EVENT_BUS_TOPIC_PREFIX", env.prefix.as_str()),
        ("DEAD_LETTER_SUBSCRIPTION", env.prefix.as_str()),
    ];
    let bus = event_bus_brokers::connect(event_bus_core::BusSettings::from_vars(vars).unwrap())
        .await
        .expect("the Pub/Sub emulator");
    let failing = event_bus_core::handler_fn(|_| async {
        Err(event_bus_core::HandlerError::permanent(
            std::io::Error::other("refused"),
        ))
    });
    let handle = bus
        .subscribe(bus.subscription("order.placed", "billing"), failing)
        .await
        .unwrap();
    let event = EventEnvelope::builder("order.placed", serde_json::json!({ "n": 1 })).build();
    bus.publish(&event).await.unwrap();
    let started = std::time::Instant::now();
    while handle.stats().snapshot().dead_lettered == 0 {
        assert!(started.elapsed().as_secs() < 30, "not dead-lettered");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    bus.shutdown().await.unwrap();

    let listed = env.run_with(&vars, &["dlq", "list"]);
    assert!(listed.ends_with("1 dead letters\n"), "{listed}");
    assert!(
        listed.contains("order.placed  permanent-failure"),
        "{listed}"
    );
    assert!(
        env.run_with(&vars, &["dlq", "list", "--no-pull"])
            .ends_with("1 dead letters\n")
    );
}
