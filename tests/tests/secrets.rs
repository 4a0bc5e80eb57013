//! No secret leaves the process: connecting with a known password, successfully and not, on
//! Redis (over TLS, as an ACL user), NATS (a server with a user), RabbitMQ (a wrong password),
//! Kafka (SASL settings; SCRAM over TLS, rightly and wrongly) and PostgreSQL (a role with a password), the password appears in no
//! error message, no `Debug` output of the error or the settings, and no log line (every
//! `tracing` event at every level, captured for the whole test process).
#![cfg(all(
    feature = "redis",
    feature = "rabbitmq",
    feature = "kafka",
    feature = "nats"
))]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use event_bus_core::{BusSettings, EventEnvelope};
use event_bus_tests::nats_server::NatsServer;
use event_bus_tests::redis_server::{RedisServer, TLS_PASSWORD};
use sqlx::ConnectOptions;
use tracing_subscriber::EnvFilter;

/// Everything logged in this process.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        // Everything at TRACE, but async-nats's own frame log: it writes the CONNECT frame,
        // password included, at TRACE (the README says to keep that target below it).
        tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new("trace,async_nats::connection=debug"))
            .with_writer(move || Sink(Arc::clone(&sink)))
            .init();
        logs
    })
    .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Connects the bus `vars` describe, publishes one event when that works, and returns
/// everything a user could see of it: the error (shown and debugged) and the settings.
async fn connect_and_show(vars: &[(&str, &str)]) -> (bool, String) {
    let settings = BusSettings::from_vars(vars.iter().copied()).unwrap();
    let mut shown = format!("{settings:?}");
    let connected = match event_bus_brokers::connect(settings).await {
        Ok(bus) => {
            let event = EventEnvelope::builder("secret.checked", serde_json::json!({})).build();
            if let Err(error) = bus.publish(&event).await {
                shown.push_str(&format!("{error} {error:?}"));
            }
            bus.shutdown().await.unwrap();
            true
        }
        Err(error) => {
            shown.push_str(&format!("{error} {error:?}"));
            false
        }
    };
    (connected, shown)
}

fn assert_hidden(secret: &str, shown: &str) {
    assert!(!shown.contains(secret), "the secret shows in: {shown}");
    let logged = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    assert!(!logged.contains(secret), "the secret was logged: {logged}");
}

fn prefix() -> String {
    format!("evbus-secrets-{}", uuid::Uuid::now_v7().simple())
}

#[tokio::test]
async fn redis_passwords_stay_inside() {
    logs();
    let server = RedisServer::start_tls().expect("start redis-server with TLS");
    let ca = server.ca_file().display().to_string();
    let prefix = prefix();
    let wrong = "redis-wrong-password-91ab";
    for (url, should_connect) in [
        (server.url(), true),
        (server.url().replace(TLS_PASSWORD, wrong), false),
    ] {
        let (connected, shown) = connect_and_show(&[
            ("EVENT_BUS_TYPE", "redis"),
            ("REDIS_EVENT_URL", &url),
            ("REDIS_TLS_CA_FILE", &ca),
            ("EVENT_BUS_TOPIC_PREFIX", &prefix),
        ])
        .await;
        assert_eq!(connected, should_connect, "{shown}");
        assert_hidden(TLS_PASSWORD, &shown);
        assert_hidden(wrong, &shown);
    }
}

#[tokio::test]
async fn nats_passwords_stay_inside() {
    logs();
    let password = "nats-password-5c3e";
    let server = NatsServer::start_with_user("bus", password).expect("start nats-server");
    let prefix = prefix();
    let wrong = "nats-wrong-password-77d0";
    for (url, should_connect) in [
        (server.url(), true),
        (server.url().replace(password, wrong), false),
    ] {
        let (connected, shown) = connect_and_show(&[
            ("EVENT_BUS_TYPE", "nats"),
            ("NATS_URL", &url),
            ("EVENT_BUS_TOPIC_PREFIX", &prefix),
        ])
        .await;
        assert_eq!(connected, should_connect, "{shown}");
        assert_hidden(password, &shown);
        assert_hidden(wrong, &shown);
    }
}

#[tokio::test]
async fn a_wrong_rabbitmq_password_stays_inside() {
    logs();
    let wrong = "rabbit-wrong-password-3f9a";
    let url = format!("amqp://guest:{wrong}@127.0.0.1:5672/%2f");
    let (connected, shown) = connect_and_show(&[
        ("EVENT_BUS_TYPE", "rabbitmq"),
        ("RABBITMQ_URL", &url),
        ("EVENT_BUS_TOPIC_PREFIX", &prefix()),
    ])
    .await;
    assert!(!connected, "{shown}");
    assert!(shown.contains("rabbitmq"), "{shown}");
    assert_hidden(wrong, &shown);
}

#[tokio::test]
async fn a_kafka_sasl_password_stays_inside() {
    logs();
    let secret = "kafka-sasl-password-b61c";
    let servers =
        std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned());
    let (_, shown) = connect_and_show(&[
        ("EVENT_BUS_TYPE", "kafka"),
        ("KAFKA_BOOTSTRAP_SERVERS", &servers),
        ("KAFKA_PROPERTY_SECURITY_PROTOCOL", "SASL_PLAINTEXT"),
        ("KAFKA_PROPERTY_SASL_MECHANISM", "PLAIN"),
        ("KAFKA_PROPERTY_SASL_USERNAME", "bus"),
        ("KAFKA_PROPERTY_SASL_PASSWORD", secret),
        ("EVENT_BUS_TOPIC_PREFIX", &prefix()),
        ("EVENT_BUS_ACK_DEADLINE_SECONDS", "3"),
    ])
    .await;
    assert_hidden(secret, &shown);
}

/// Over SASL_SSL with SCRAM-SHA-512 on a private Tansu requiring it: the right password
/// connects and publishes, a wrong one is refused; neither shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_scram_passwords_stay_inside() {
    use event_bus_tests::kafka_server::{SASL_PASSWORD, TansuServer};
    logs();
    let server = TansuServer::start_secure().expect("start Tansu with TLS and SASL");
    let wrong = "kafka-wrong-password-0c7e";
    let prefix = prefix();
    for (password, connects) in [(SASL_PASSWORD, true), (wrong, false)] {
        let mut vars: Vec<(&str, String)> = server.client_variables(password);
        vars.extend([
            ("EVENT_BUS_TYPE", "kafka".to_owned()),
            ("EVENT_BUS_TOPIC_PREFIX", prefix.clone()),
            ("EVENT_BUS_ACK_DEADLINE_SECONDS", "10".to_owned()),
        ]);
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (connected, shown) = connect_and_show(&vars).await;
        assert_eq!(connected, connects, "{shown}");
        assert_hidden(password, &shown);
    }
}

#[tokio::test]
async fn a_postgres_password_stays_inside() {
    logs();
    // The test's own statements carry the password: they are not logged.
    let admin_options = "postgres://postgres@127.0.0.1:5432/postgres"
        .parse::<sqlx::postgres::PgConnectOptions>()
        .unwrap()
        .disable_statement_logging();
    let admin = sqlx::PgPool::connect_with(admin_options)
        .await
        .expect("the local PostgreSQL");
    let id = uuid::Uuid::now_v7().simple().to_string();
    let (role, password) = (format!("evbus_secret_{id}"), format!("pg-password-{id}"));
    for statement in [
        format!("CREATE ROLE {role} LOGIN PASSWORD '{password}'"),
        format!("GRANT CREATE ON DATABASE postgres TO {role}"),
    ] {
        sqlx::query(&statement).execute(&admin).await.unwrap();
    }
    let mut shown = String::new();
    for database in ["postgres", "no_such_database"] {
        let url = format!("postgres://{role}:{password}@127.0.0.1:5432/{database}?sslmode=require");
        match event_store_postgres::PgEventStore::connect(&url, &format!("evbus_t_{id}")).await {
            Ok(_) => shown.push_str("connected"),
            Err(error) => shown.push_str(&format!("{error} {error:?}")),
        }
        let settings = BusSettings::from_vars([("DATABASE_URL", url.as_str())]).unwrap();
        shown.push_str(&format!(
            "{:?}",
            event_store::StoreSettings::from_settings(&settings).unwrap()
        ));
    }
    sqlx::query(&format!("DROP OWNED BY {role} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query(&format!("DROP ROLE {role}"))
        .execute(&admin)
        .await
        .unwrap();
    assert!(shown.starts_with("connected"), "{shown}");
    assert!(shown.contains("no_such_database"), "{shown}");
    assert_hidden(&password, &shown);
}
