//! `docker-compose.events.yml`, checked without Docker: its services, ports, profiles and
//! health checks, and that the project variables it sets are ones the project reads.

#![cfg(all(
    feature = "redis",
    feature = "rabbitmq",
    feature = "kafka",
    feature = "pubsub"
))]

use std::collections::BTreeSet;

use event_bus_brokers::kafka::KafkaOptions;
use event_bus_brokers::rabbitmq::RabbitMqOptions;
use event_bus_brokers::redis::RedisOptions;
use event_bus_core::BusSettings;
use event_bus_tests::variables::project_variables;
use event_store::StoreSettings;
use serde_yaml_ng::{Mapping, Value};

const COMPOSE: &str = include_str!("../../docker-compose.events.yml");
const README: &str = include_str!("../../README.md");

/// Images whose own settings share a prefix with the project's variables: the variables the
/// image reads under that prefix are its configuration, not the project's.
const IMAGE_NAMESPACES: &[(&str, &str)] = &[
    ("apache/kafka:", "KAFKA_"),
    ("ghcr.io/kafbat/kafka-ui:", "KAFKA_CLUSTERS_"),
];

fn compose() -> Mapping {
    serde_yaml_ng::from_str(COMPOSE).expect("the compose file is YAML")
}

fn services() -> Mapping {
    compose()["services"]
        .as_mapping()
        .expect("a services mapping")
        .clone()
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|items| items.iter().map(text).collect())
        .unwrap_or_default()
}

/// `environment:` as name/value pairs, in mapping or `NAME=value` list form.
fn environment(service: &Value) -> Vec<(String, String)> {
    match &service["environment"] {
        Value::Mapping(map) => map.iter().map(|(k, v)| (text(k), text(v))).collect(),
        Value::Sequence(items) => items
            .iter()
            .map(|item| {
                let item = text(item);
                let (name, value) = item.split_once('=').unwrap_or((&item, ""));
                (name.to_owned(), value.to_owned())
            })
            .collect(),
        Value::Null => Vec::new(),
        other => panic!("environment is neither a mapping nor a list: {other:?}"),
    }
}

fn published_ports(service: &Value) -> Vec<String> {
    strings(&service["ports"])
}

#[test]
fn it_runs_every_server_of_the_project() {
    let names: BTreeSet<String> = services().keys().map(text).collect();
    let expected: BTreeSet<String> = [
        "kafka", "kafka-ui", "redis", "rabbitmq", "pubsub", "postgres", "demo",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(names, expected);
    let services = services();
    let image = |name: &str| text(&services[name]["image"]);
    assert!(
        image("kafka").starts_with("apache/kafka:"),
        "{}",
        image("kafka")
    );
    assert!(
        image("rabbitmq").ends_with("-management"),
        "{}",
        image("rabbitmq")
    );
    assert_eq!(
        image("pubsub"),
        "gcr.io/google.com/cloudsdktool/google-cloud-cli:emulators"
    );
    let command = strings(&services["pubsub"]["command"]).join(" ");
    assert!(
        command.starts_with("gcloud beta emulators pubsub start --host-port=0.0.0.0:8085"),
        "{command}"
    );
    assert!(image("redis").starts_with("redis:"));
    assert!(image("postgres").starts_with("postgres:"));
}

#[test]
fn kafka_runs_in_kraft_mode_without_zookeeper() {
    let services = services();
    let kafka: std::collections::HashMap<_, _> =
        environment(&services["kafka"]).into_iter().collect();
    let roles: BTreeSet<&str> = kafka["KAFKA_PROCESS_ROLES"].split(',').collect();
    assert_eq!(roles, BTreeSet::from(["broker", "controller"]));
    assert!(kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"].starts_with("1@kafka:"));
    assert!(!kafka.contains_key("KAFKA_ZOOKEEPER_CONNECT"));
    assert!(!COMPOSE.to_lowercase().contains("zookeeper:"));
    assert!(
        kafka["KAFKA_ADVERTISED_LISTENERS"].contains("://127.0.0.1:9092"),
        "host clients reach the advertised listener"
    );
}

#[test]
fn kafka_ui_is_a_tool_on_localhost_8090() {
    let services = services();
    let ui = &services["kafka-ui"];
    assert_eq!(strings(&ui["profiles"]), vec!["tools".to_owned()]);
    assert_eq!(published_ports(ui), vec!["127.0.0.1:8090:8080".to_owned()]);
    let bootstrap = environment(ui)
        .into_iter()
        .find(|(name, _)| name == "KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS")
        .expect("the UI knows the cluster")
        .1;
    assert_eq!(bootstrap, "kafka:29092");
    for name in ["redis", "rabbitmq", "kafka", "pubsub", "postgres"] {
        assert!(
            services[name]["profiles"].is_null(),
            "{name} starts without a profile"
        );
    }
}

#[test]
fn every_port_is_published_on_loopback_where_the_project_looks() {
    let services = services();
    for (name, service) in &services {
        for port in published_ports(service) {
            assert!(
                port.starts_with("127.0.0.1:"),
                "{} publishes {port} beyond loopback",
                text(name)
            );
        }
    }
    let defaults = BusSettings::default();
    let redis = RedisOptions::from_settings(&defaults).unwrap().url;
    let kafka = KafkaOptions::from_settings(&defaults)
        .unwrap()
        .bootstrap_servers;
    let rabbitmq = RabbitMqOptions::from_settings(&defaults).unwrap().url;
    let postgres = StoreSettings::from_settings(&defaults)
        .unwrap()
        .database_url;
    for (service, port, default) in [
        ("redis", "127.0.0.1:6379:6379", redis.as_str()),
        ("kafka", "127.0.0.1:9092:9092", kafka.as_str()),
        ("rabbitmq", "127.0.0.1:5672:5672", rabbitmq.as_str()),
        ("postgres", "127.0.0.1:5432:5432", postgres.as_str()),
        ("pubsub", "127.0.0.1:8085:8085", "127.0.0.1:8085"),
    ] {
        assert!(
            published_ports(&services[service]).contains(&port.to_owned()),
            "{service} does not publish {port}"
        );
        let host_port = port.rsplit_once(':').map(|(host, _)| host).unwrap();
        assert!(
            default.contains(host_port),
            "the project's default {default} does not point at {service}'s {host_port}"
        );
    }
    assert!(
        published_ports(&services["rabbitmq"]).contains(&"127.0.0.1:15672:15672".to_owned()),
        "the management UI"
    );
}

#[test]
fn every_server_has_a_health_check() {
    for (name, service) in &services() {
        if strings(&service["profiles"]).contains(&"demo".to_owned()) {
            continue;
        }
        let test = strings(&service["healthcheck"]["test"]);
        assert!(
            test.first()
                .is_some_and(|kind| kind == "CMD" || kind == "CMD-SHELL")
                && test.len() > 1,
            "{} has no health check command: {test:?}",
            text(name)
        );
        assert!(
            !service["healthcheck"]["interval"].is_null(),
            "{} has no health check interval",
            text(name)
        );
    }
    let demo = &services()["demo"];
    for (dependency, condition) in demo["depends_on"].as_mapping().expect("depends_on") {
        assert_eq!(
            text(&condition["condition"]),
            "service_healthy",
            "the demo waits for {} to be healthy",
            text(dependency)
        );
    }
}

#[test]
fn every_project_variable_it_sets_or_reads_is_one_the_project_reads() {
    // A variable "looks like the project's" when it starts like one of the project's
    // variables (EVENT_, REDIS_, KAFKA_, ...).
    let variables = project_variables();
    let families: BTreeSet<String> = variables
        .iter()
        .map(|v| format!("{}_", v.split('_').next().unwrap()))
        .collect();
    let mut checked = 0;
    for (name, service) in &services() {
        let image = text(&service["image"]);
        for (variable, _) in environment(service) {
            let image_owned = IMAGE_NAMESPACES
                .iter()
                .any(|(img, prefix)| image.starts_with(img) && variable.starts_with(prefix));
            let looks_like_ours = families.iter().any(|f| variable.starts_with(f.as_str()));
            if looks_like_ours && !image_owned {
                assert!(
                    variables.contains(&variable.as_str()),
                    "{} sets {variable}, which the project does not read",
                    text(name)
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 8,
        "the demo service sets the project's variables"
    );
    // `${NAME}` / `${NAME:-default}` interpolations read the caller's environment.
    for piece in COMPOSE.split("${").skip(1) {
        let name: String = piece
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        assert!(
            variables.contains(&name.as_str()),
            "the compose file interpolates {name}, which the project does not read"
        );
    }
}

#[test]
fn the_readme_shows_how_to_start_it() {
    assert!(README.contains("docker compose -f docker-compose.events.yml --profile tools up"));
}
