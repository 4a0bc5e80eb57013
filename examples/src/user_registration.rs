//! The user-registration flow on the event bus: `user.registered` is handled by a profile
//! service, a welcome e-mail, analytics, and a CRM sync that fails twice per event before it
//! succeeds; a poisoned event whose payload does not match the schema ends in the dead-letter
//! topic with its reason.
//!
//! Runs on the in-memory bus by default, on any backend with `EVENT_BUS_TYPE`:
//! `cargo run -p event-bus-examples --bin user-registration`

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_bus_core::dead_letter::headers;
use event_bus_core::{
    BusSettings, DomainEvent, EventBus, EventEnvelope, HandlerError, RetryPolicy,
    SubscriptionConfig, SubscriptionHandle, typed,
};
use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

const WAIT: Duration = Duration::from_secs(30);

/// A user signed up.
#[derive(Debug, Serialize, Deserialize)]
struct UserRegistered {
    user_id: String,
    email: String,
    name: String,
}

impl DomainEvent for UserRegistered {
    const EVENT_TYPE: &'static str = "user.registered";
    const AGGREGATE_TYPE: &'static str = "user";

    fn aggregate_id(&self) -> String {
        self.user_id.clone()
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("error")),
        )
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("user-registration: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let settings = BusSettings::from_env()?;
    let bus = event_bus_brokers::connect(settings).await?;
    println!(
        "bus: {} backend, dead letters to `{}`",
        bus.broker().name(),
        bus.topics().dead_letter_topic()
    );

    let inspector_config = SubscriptionConfig::new(
        bus.topics().dead_letter_topic(),
        "user-registration-dead-letter-inspector",
    );
    let mut dead_letters = bus.broker().subscribe(&inspector_config).await?;

    let handlers = subscribe_handlers(&bus).await?;

    let users = [
        ("u-1", "ada@example.com", "Ada"),
        ("u-2", "zoë@example.com", "Zoë"),
        ("u-3", "grace@example.com", "Grace"),
    ];
    for (user_id, email, name) in users {
        let event = UserRegistered {
            user_id: user_id.into(),
            email: email.into(),
            name: name.into(),
        };
        let envelope = EventEnvelope::from_event(&event)?
            .source("user-service")
            .aggregate("user", user_id, 1)
            .build();
        bus.publish(&envelope).await?;
        println!("published  user.registered for {name} <{email}>");
    }
    let poisoned = EventEnvelope::builder(
        UserRegistered::EVENT_TYPE,
        serde_json::json!({"user_id": 42}),
    )
    .source("legacy-importer")
    .aggregate("user", "42", 1)
    .build();
    bus.publish(&poisoned).await?;
    println!("published  a poisoned user.registered (user_id is a number, email missing)");

    for handle in &handlers {
        let name = &handle.config().consumer_group;
        handle
            .stats()
            .wait_until(WAIT, |s| {
                s.handled == users.len() as u64 && s.dead_lettered == 1
            })
            .await
            .map_err(|timeout| format!("{name} did not finish: {timeout}"))?;
    }
    for _ in &handlers {
        let letter = tokio::time::timeout(WAIT, dead_letters.next())
            .await
            .map_err(|_| "a dead letter did not arrive")?
            .ok_or("the dead-letter subscription ended")??;
        let header = |name| {
            letter
                .message()
                .headers
                .get(name)
                .map_or("?", String::as_str)
        };
        println!(
            "dead-letter from {} after {} attempt(s), {}: {}",
            header(headers::SUBSCRIPTION),
            header(headers::ATTEMPTS),
            header(headers::REASON),
            header(headers::ERROR)
        );
        letter.ack().await?;
    }
    dead_letters.close().await?;

    println!("\nsummary");
    for handle in &handlers {
        let stats = handle.stats().snapshot();
        println!(
            "  {:<48} handled {}  failed {}  retried {}  dead-lettered {}",
            handle.config().consumer_group,
            stats.handled,
            stats.failed,
            stats.retried,
            stats.dead_lettered
        );
    }
    bus.shutdown().await?;
    Ok(())
}

async fn subscribe_handlers(
    bus: &EventBus,
) -> Result<Vec<SubscriptionHandle>, Box<dyn std::error::Error>> {
    let profile = typed(|user: UserRegistered, _| async move {
        println!(
            "profile    created profile for {} ({})",
            user.name, user.user_id
        );
        Ok(())
    });
    let welcome = typed(|user: UserRegistered, _| async move {
        println!("welcome    sent welcome e-mail to {}", user.email);
        Ok(())
    });
    let analytics_count = Arc::new(Mutex::new(0_u32));
    let analytics = typed(move |user: UserRegistered, _| {
        let mut count = analytics_count.lock().expect("analytics counter");
        *count += 1;
        println!("analytics  signup #{} ({})", *count, user.user_id);
        async { Ok(()) }
    });
    let attempts: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let crm_sync = typed(move |user: UserRegistered, _| {
        let attempt = {
            let mut attempts = attempts.lock().expect("attempt counter");
            let attempt = attempts.entry(user.user_id.clone()).or_default();
            *attempt += 1;
            *attempt
        };
        async move {
            if attempt <= 2 {
                println!(
                    "crm-sync   CRM unreachable for {} (attempt {attempt}), will retry",
                    user.user_id
                );
                return Err(HandlerError::retryable("CRM unreachable"));
            }
            println!("crm-sync   synced {} on attempt {attempt}", user.user_id);
            Ok(())
        }
    });
    let quick_retry = RetryPolicy {
        immediate_attempts: 0,
        initial_backoff: Duration::from_millis(50),
        multiplier: 2.0,
        max_backoff: Duration::from_secs(1),
        jitter: 0.1,
    };
    let event_type = UserRegistered::EVENT_TYPE;
    Ok(vec![
        bus.subscribe(bus.subscription(event_type, "profile"), profile)
            .await?,
        bus.subscribe(bus.subscription(event_type, "welcome-email"), welcome)
            .await?,
        bus.subscribe(bus.subscription(event_type, "analytics"), analytics)
            .await?,
        bus.subscribe(
            bus.subscription(event_type, "crm-sync").retry(quick_retry),
            crm_sync,
        )
        .await?,
    ])
}
