//! The user-registration flow on the event bus.
//!
//! Each `user.registered` event fans out to four handlers, each in its own consumer group:
//! `profile` creates a profile, `welcome-email` sends a welcome e-mail, `analytics` counts
//! signups, and `crm-sync` fails twice per event with a retryable error before it succeeds. A
//! poisoned event, whose payload does not match the schema, fails permanently in every handler
//! and ends in the dead-letter topic, where an inspector prints why it got there.
//!
//! Runs on the in-memory bus by default, on any compiled-in backend with `EVENT_BUS_TYPE`, and
//! shows the bus's tracing spans with `RUST_LOG=event_bus_core=info`:
//!
//! ```text
//! cargo run -p event-bus-examples --bin user-registration
//! ```
//!
//! Exits non-zero when the settings are invalid or the events are not all handled in 30 s.

use std::collections::HashMap;
use std::error::Error;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use event_bus_core::dead_letter::DeadLetter;
use event_bus_core::dead_letter::headers;
use event_bus_core::{
    BusSettings, DomainEvent, EventBus, EventEnvelope, HandlerError, RetryPolicy, StatsSnapshot,
    Subscription, SubscriptionConfig, SubscriptionHandle, typed,
};
use serde::{Deserialize, Serialize};

const WAIT: Duration = Duration::from_secs(30);
const USERS: [(&str, &str, &str); 3] = [
    ("u-1", "ada@example.com", "Ada Lovelace"),
    ("u-2", "zoe@example.com", "Zoë Kravitz"),
    ("u-3", "grace@example.com", "Grace Hopper"),
];
const CRM_FAILURES_PER_EVENT: u32 = 2;

const PROFILE: &str = "profile";
const WELCOME_EMAIL: &str = "welcome-email";
const ANALYTICS: &str = "analytics";
const CRM_SYNC: &str = "crm-sync";
const PUBLISHER: &str = "publisher";
const DEAD_LETTER: &str = "dead-letter";

/// Prints one line of the demo, prefixed with who is speaking.
macro_rules! say {
    ($who:expr, $($what:tt)*) => {
        println!("{:<13}  {}", $who, format_args!($($what)*))
    };
}

type DemoResult<T = ()> = Result<T, Box<dyn Error>>;

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
    // RUST_LOG filters (default `warn`); EVENT_BUS_LOG_FORMAT=json logs JSON lines.
    if let Err(error) = event_bus_core::telemetry::logging::init_logging("warn") {
        eprintln!("user-registration: {error}");
        return ExitCode::FAILURE;
    }
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("user-registration: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> DemoResult {
    let bus = event_bus_brokers::connect(BusSettings::from_env()?).await?;
    say!("bus", "{} backend", bus.broker().name());

    let dead_letter_topic = bus.topics().dead_letter_topic();
    let inspector = SubscriptionConfig::new(dead_letter_topic, "demo-dead-letter-inspector");
    let mut dead_letters = bus.broker().subscribe(&inspector).await?;
    let handlers = subscribe_handlers(&bus).await?;

    for (user_id, email, name) in USERS {
        let event = UserRegistered {
            user_id: user_id.into(),
            email: email.into(),
            name: name.into(),
        };
        let envelope = EventEnvelope::from_event(&event)?
            .source("signup-form")
            .build();
        bus.publish(&envelope).await?;
        say!(PUBLISHER, "{name} <{email}> registered as {user_id}");
    }
    let poisoned_payload = serde_json::json!({"user_id": 42});
    let poisoned = EventEnvelope::builder(UserRegistered::EVENT_TYPE, poisoned_payload.clone())
        .source("legacy-import")
        .aggregate(UserRegistered::AGGREGATE_TYPE, "42", 1)
        .build();
    bus.publish(&poisoned).await?;
    say!(PUBLISHER, "poisoned event {poisoned_payload}");

    let outcome = async {
        wait_for_handlers(&handlers).await?;
        let poisoned_id = poisoned.id.to_string();
        inspect_dead_letters(&mut dead_letters, &poisoned_id, handlers.len()).await
    }
    .await;
    dead_letters.close().await?;
    bus.shutdown().await?;

    println!("\nsummary");
    for (name, handle) in &handlers {
        let StatsSnapshot {
            handled,
            retried,
            dead_lettered,
            ..
        } = handle.stats().snapshot();
        say!(
            name,
            "handled {handled}, retries {retried}, dead-lettered {dead_lettered}"
        );
    }
    let inspected = outcome?;
    say!(DEAD_LETTER, "{inspected} inspected, one per handler");
    Ok(())
}

async fn subscribe_handlers(bus: &EventBus) -> DemoResult<Vec<(&'static str, SubscriptionHandle)>> {
    let create_profile = typed(|UserRegistered { user_id, name, .. }, _| async move {
        say!(PROFILE, "created profile {user_id} for {name}");
        Ok(())
    });

    let send_welcome_email = typed(|UserRegistered { email, name, .. }, _| async move {
        say!(WELCOME_EMAIL, "sent \"Welcome, {name}!\" to {email}");
        Ok(())
    });

    let signups = Arc::new(AtomicU64::new(0));
    let count_signup = typed(move |UserRegistered { user_id, .. }, _| {
        let count = signups.fetch_add(1, Ordering::SeqCst) + 1;
        say!(ANALYTICS, "signup #{count} ({user_id})");
        async { Ok(()) }
    });

    let attempts_by_event = Arc::new(Mutex::new(HashMap::new()));
    let sync_to_crm = typed(move |UserRegistered { user_id, .. }, envelope| {
        let attempt = {
            let mut attempts = attempts_by_event
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let attempt = attempts.entry(envelope.id).or_insert(0_u32);
            *attempt += 1;
            *attempt
        };
        async move {
            if attempt <= CRM_FAILURES_PER_EVENT {
                say!(CRM_SYNC, "CRM down for {user_id} on attempt {attempt}");
                return Err(HandlerError::retryable("CRM down"));
            }
            say!(CRM_SYNC, "synced {user_id} on attempt {attempt}");
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

    let subscription = |name| bus.subscription(UserRegistered::EVENT_TYPE, name);
    let profile = bus.subscribe(subscription(PROFILE), create_profile).await?;
    let welcome_email = bus
        .subscribe(subscription(WELCOME_EMAIL), send_welcome_email)
        .await?;
    let analytics = bus.subscribe(subscription(ANALYTICS), count_signup).await?;
    let crm_sync = bus
        .subscribe(subscription(CRM_SYNC).retry(quick_retry), sync_to_crm)
        .await?;
    Ok(vec![
        (PROFILE, profile),
        (WELCOME_EMAIL, welcome_email),
        (ANALYTICS, analytics),
        (CRM_SYNC, crm_sync),
    ])
}

async fn wait_for_handlers(handlers: &[(&str, SubscriptionHandle)]) -> DemoResult {
    let registrations = USERS.len() as u64;
    for (name, handle) in handlers {
        handle
            .stats()
            .wait_until(WAIT, |s| s.handled >= registrations && s.dead_lettered >= 1)
            .await
            .map_err(|timeout| {
                format!(
                    "{name} did not finish within {WAIT:?}: expected {registrations} handled and 1 dead-lettered, got {} handled and {} dead-lettered",
                    timeout.last.handled, timeout.last.dead_lettered
                )
            })?;
    }
    Ok(())
}

/// Prints and acks every dead letter until `expected` of them carry the poisoned event.
async fn inspect_dead_letters(
    dead_letters: &mut Box<dyn Subscription>,
    poisoned_id: &str,
    expected: usize,
) -> DemoResult<usize> {
    let mut inspected = 0;
    while inspected < expected {
        let delivery = tokio::time::timeout(WAIT, dead_letters.next())
            .await
            .map_err(|_| {
                format!("only {inspected} of {expected} dead letters arrived in {WAIT:?}")
            })?
            .ok_or("the dead-letter subscription ended")??;
        let dead_letter = &delivery.message().headers;
        let header = |name| dead_letter.get(name).map_or("?", String::as_str);
        say!(
            DEAD_LETTER,
            "{} gave up on {} after {} attempt(s) ({}): {}",
            header(headers::SUBSCRIPTION),
            header(headers::ORIGINAL_TOPIC),
            header(headers::ATTEMPTS),
            header(headers::REASON),
            header(headers::ERROR),
        );
        let letter = DeadLetter::from_message(delivery.message().clone());
        if letter.event_id.as_deref() == Some(poisoned_id) {
            inspected += 1;
        }
        delivery.ack().await?;
    }
    Ok(inspected)
}
