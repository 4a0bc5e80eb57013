//! Conversation history kept as events: `conversation.started`, one `conversation.turn-completed`
//! per exchange, `conversation.ended`, appended to the conversation's stream with expected
//! versions and rebuilt into the full conversation from the latest snapshot.
//!
//! The store is the in-memory event store with a snapshot every 4 events; the events leave
//! through the transactional outbox, whose relay publishes them to the bus `EVENT_BUS_TYPE`
//! selects, where an analytics handler hears about the ended conversation.
//!
//! ```text
//! cargo run -p event-bus-examples --bin conversation-history
//! ```
//!
//! Exits non-zero when the rebuilt conversation is not the one written.

use std::error::Error;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use event_bus_core::{BusSettings, DomainEvent, EventEnvelope, Recorder};
use event_store::MemoryEventStore;
use event_store::outbox::{Outbox, OutboxRelay};
use event_store::store::{EventStoreExt, ExpectedVersion, StoreError, StreamId};
use serde::{Deserialize, Serialize};

const WAIT: Duration = Duration::from_secs(30);
const SNAPSHOT_INTERVAL: u64 = 4;
const TURNS: [(&str, &str); 5] = [
    (
        "What is an event store?",
        "A log of everything that happened, per aggregate.",
    ),
    (
        "Why keep every event?",
        "So any state can be rebuilt, audited or projected anew.",
    ),
    (
        "Isn't rebuilding slow?",
        "Snapshots keep it short: start from the latest one.",
    ),
    (
        "And two writers at once?",
        "Expected versions: the second append fails cleanly.",
    ),
    ("Thanks!", "You're welcome."),
];

type DemoResult<T = ()> = Result<T, Box<dyn Error>>;

/// A conversation began.
#[derive(Debug, Serialize, Deserialize)]
struct ConversationStarted {
    conversation_id: String,
    user: String,
}

impl DomainEvent for ConversationStarted {
    const EVENT_TYPE: &'static str = "conversation.started";
    const AGGREGATE_TYPE: &'static str = "conversation";
    fn aggregate_id(&self) -> String {
        self.conversation_id.clone()
    }
}

/// One question and its answer.
#[derive(Debug, Serialize, Deserialize)]
struct TurnCompleted {
    conversation_id: String,
    question: String,
    answer: String,
}

impl DomainEvent for TurnCompleted {
    const EVENT_TYPE: &'static str = "conversation.turn-completed";
    const AGGREGATE_TYPE: &'static str = "conversation";
    fn aggregate_id(&self) -> String {
        self.conversation_id.clone()
    }
}

/// The conversation is over.
#[derive(Debug, Serialize, Deserialize)]
struct ConversationEnded {
    conversation_id: String,
    reason: String,
}

impl DomainEvent for ConversationEnded {
    const EVENT_TYPE: &'static str = "conversation.ended";
    const AGGREGATE_TYPE: &'static str = "conversation";
    fn aggregate_id(&self) -> String {
        self.conversation_id.clone()
    }
}

/// The conversation as rebuilt from its events.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
struct Conversation {
    user: String,
    turns: Vec<(String, String)>,
    ended: Option<String>,
}

/// Folds one event into the conversation.
fn apply(mut conversation: Conversation, event: &EventEnvelope) -> Conversation {
    if let Ok(started) = event.decode::<ConversationStarted>() {
        conversation.user = started.user;
    } else if let Ok(turn) = event.decode::<TurnCompleted>() {
        conversation.turns.push((turn.question, turn.answer));
    } else if let Ok(ended) = event.decode::<ConversationEnded>() {
        conversation.ended = Some(ended.reason);
    }
    conversation
}

fn envelope<E: DomainEvent>(event: &E) -> DemoResult<EventEnvelope> {
    Ok(EventEnvelope::from_event(event)?
        .source("assistant")
        .build())
}

async fn run() -> DemoResult {
    let bus = event_bus_brokers::connect(BusSettings::from_env()?).await?;
    let store = MemoryEventStore::new(SNAPSHOT_INTERVAL);
    let analytics = Recorder::new();
    bus.subscribe(
        bus.subscription(ConversationEnded::EVENT_TYPE, "analytics"),
        analytics.clone(),
    )
    .await?;

    let id = "c-1".to_owned();
    let stream = StreamId::new("conversation", &id);
    let started = ConversationStarted {
        conversation_id: id.clone(),
        user: "ada".into(),
    };
    let mut version = store
        .append_and_enqueue(
            &stream,
            ExpectedVersion::NoStream,
            vec![envelope(&started)?],
        )
        .await?
        .version;
    for (question, answer) in TURNS {
        let turn = TurnCompleted {
            conversation_id: id.clone(),
            question: question.into(),
            answer: answer.into(),
        };
        version = store
            .append_and_enqueue(
                &stream,
                ExpectedVersion::Exact(version),
                vec![envelope(&turn)?],
            )
            .await?
            .version;
    }

    // A second writer still at version 1 tries to end the conversation: refused, nothing written.
    let ended = ConversationEnded {
        conversation_id: id.clone(),
        reason: "user said thanks".into(),
    };
    match store
        .append_and_enqueue(&stream, ExpectedVersion::Exact(1), vec![envelope(&ended)?])
        .await
    {
        Err(error @ StoreError::Concurrency { .. }) => println!("stale writer   {error}"),
        other => return Err(format!("a stale append must fail, got {other:?}").into()),
    }
    version = store
        .append_and_enqueue(
            &stream,
            ExpectedVersion::Exact(version),
            vec![envelope(&ended)?],
        )
        .await?
        .version;
    println!("store          {id}: {version} events appended");

    let relay = OutboxRelay::for_bus(Arc::new(store.clone()), &bus);
    let report = relay.relay_once().await?;
    println!(
        "outbox relay   published {} events to the {} bus",
        report.published,
        bus.broker().name()
    );
    let heard = analytics.wait_for(1, WAIT).await?;
    println!("analytics      heard that {} ended", heard[0].aggregate_id);

    let rebuilt = store
        .reconstruct_state(&stream, apply, Conversation::default())
        .await?;
    println!(
        "rebuilt        from {} ({} events folded, snapshot saved: {})",
        rebuilt
            .snapshot_version
            .map_or("the first event".to_owned(), |v| format!("snapshot v{v}")),
        rebuilt.events_applied,
        rebuilt.snapshot_saved
    );
    let again = store
        .reconstruct_state(&stream, apply, Conversation::default())
        .await?;
    println!(
        "rebuilt again  from snapshot v{} ({} events folded)",
        again.snapshot_version.unwrap_or(0),
        again.events_applied
    );

    let conversation = again.state;
    println!("\nconversation {id} with {}:", conversation.user);
    for (n, (question, answer)) in conversation.turns.iter().enumerate() {
        println!(
            "  {}. {}: {question}\n     assistant: {answer}",
            n + 1,
            conversation.user
        );
    }
    println!("  ended: {}", conversation.ended.as_deref().unwrap_or("no"));

    let expected_turns: Vec<(String, String)> = TURNS
        .iter()
        .map(|(q, a)| ((*q).to_owned(), (*a).to_owned()))
        .collect();
    if conversation.turns != expected_turns
        || conversation.ended.is_none()
        || rebuilt.state != conversation
    {
        return Err("the rebuilt conversation differs from the one written".into());
    }
    bus.shutdown().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
