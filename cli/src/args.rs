//! The command line, as clap reads it.

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use event_bus_sagas::SagaStatus;
use uuid::Uuid;

/// Operate the event bus: publish, tail, set up topics, handle dead letters, replay from the
/// event store. The backend is the one EVENT_BUS_TYPE names; the store is DATABASE_URL.
#[derive(Debug, Parser)]
#[command(name = "eventbus", version)]
pub struct Cli {
    /// PostgreSQL schema of the event store and parked dead letters.
    #[arg(
        long,
        global = true,
        env = "EVENT_STORE_SCHEMA",
        default_value = "event_store"
    )]
    pub schema: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Publish one event: a full CloudEvents envelope, or a payload with --type.
    Publish(PublishArgs),
    /// Print the events of a topic as JSON lines.
    Tail(TailArgs),
    /// Create the subscriptions of event types and the dead-letter subscription.
    Setup(SetupArgs),
    /// List, inspect, redrive or discard dead letters.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Publish stored events again, marked `x-replayed: true`.
    Replay(ReplayArgs),
    /// Event store commands.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Saga status, from the saga store at SAGA_DATABASE_URL.
    #[command(subcommand)]
    Sagas(SagasCommand),
}

/// Arguments of `publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The JSON; `-` or nothing reads standard input.
    pub json: Option<String>,
    /// Event type; the JSON is then the payload.
    #[arg(long = "type")]
    pub event_type: Option<String>,
    /// Producing service.
    #[arg(long, default_value = "eventbus-cli")]
    pub source: String,
    /// Aggregate as `TYPE:ID`.
    #[arg(long)]
    pub aggregate: Option<String>,
    /// Publish to this topic instead of the event type's.
    #[arg(long)]
    pub topic: Option<String>,
}

/// Arguments of `tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// Event type whose topic to read.
    #[arg(required_unless_present = "topic")]
    pub event_type: Option<String>,
    /// Topic to read instead.
    #[arg(long)]
    pub topic: Option<String>,
    /// Consumer group (default: a new one, which starts at the oldest event where the backend keeps them).
    #[arg(long)]
    pub group: Option<String>,
    /// Stop after this many events.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop when no event arrived for this many seconds.
    #[arg(long)]
    pub idle_secs: Option<u64>,
}

/// Arguments of `setup`.
#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Event types to set up.
    #[arg(required = true)]
    pub event_types: Vec<String>,
    /// Handler names; each gets its own subscription per event type.
    #[arg(long = "handler", default_value = "default")]
    pub handlers: Vec<String>,
}

/// Which dead letters a command applies to.
#[derive(Debug, Args)]
pub struct Selection {
    /// One parked dead letter by id.
    pub id: Option<Uuid>,
    /// Every parked dead letter (with the filters, those passing them).
    #[arg(long)]
    pub all: bool,
    /// Only this reason, such as `max-attempts-exceeded`.
    #[arg(long)]
    pub reason: Option<String>,
    /// Only dead letters from this topic.
    #[arg(long)]
    pub topic: Option<String>,
    /// Only this event type.
    #[arg(long = "type")]
    pub event_type: Option<String>,
}

/// Dead-letter commands. Listing commands first move what waits on the dead-letter topic into
/// the parked store (PostgreSQL), where dead letters stay until redriven or discarded.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Move dead letters from the dead-letter topic into the parked store.
    Pull(PullArgs),
    /// List parked dead letters.
    List {
        /// Filters.
        #[command(flatten)]
        filter: FilterArgs,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Do not pull from the dead-letter topic first.
        #[arg(long)]
        no_pull: bool,
    },
    /// Show one parked dead letter with its headers and payload.
    Show {
        /// Its id.
        id: Uuid,
    },
    /// Publish dead letters to their original topic again and unpark them.
    Redrive {
        /// Which.
        #[command(flatten)]
        selection: Selection,
        /// Only say what would be done.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete parked dead letters.
    Discard {
        /// Which.
        #[command(flatten)]
        selection: Selection,
        /// Only say what would be done.
        #[arg(long)]
        dry_run: bool,
    },
    /// Counts by reason, topic and event type, and the oldest failure.
    Stats {
        /// Filters.
        #[command(flatten)]
        filter: FilterArgs,
        /// Do not pull from the dead-letter topic first.
        #[arg(long)]
        no_pull: bool,
    },
}

/// Arguments of `dlq pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Stop when nothing arrived for this many milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub idle_ms: u64,
}

/// Dead-letter filters.
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Only this reason.
    #[arg(long)]
    pub reason: Option<String>,
    /// Only dead letters from this topic.
    #[arg(long)]
    pub topic: Option<String>,
    /// Only this event type.
    #[arg(long = "type")]
    pub event_type: Option<String>,
}

/// Arguments of `replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Events that happened at or after this time (RFC 3339).
    #[arg(long)]
    pub from: Option<DateTime<Utc>>,
    /// Events that happened before this time (RFC 3339).
    #[arg(long)]
    pub to: Option<DateTime<Utc>>,
    /// Only these event types.
    #[arg(long = "type")]
    pub event_types: Vec<String>,
    /// Only aggregates of this type.
    #[arg(long)]
    pub aggregate_type: Option<String>,
    /// Only the aggregate with this id.
    #[arg(long)]
    pub aggregate_id: Option<String>,
    /// Start after this global position.
    #[arg(long, default_value_t = 0)]
    pub after_position: u64,
    /// Events per batch.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Only count what would be replayed.
    #[arg(long)]
    pub dry_run: bool,
}

/// Event store commands.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Counts of events, streams, snapshots, archive and outbox.
    Stats,
}

/// Saga commands.
#[derive(Debug, Subcommand)]
pub enum SagasCommand {
    /// List sagas, oldest first.
    List {
        /// Only sagas in these states (running, compensating, completed, compensated, failed).
        #[arg(long = "status", value_parser = parse_status)]
        statuses: Vec<SagaStatus>,
    },
    /// Show one saga and its step log.
    Show {
        /// Its id.
        id: Uuid,
    },
}

fn parse_status(value: &str) -> Result<SagaStatus, String> {
    SagaStatus::ALL
        .into_iter()
        .find(|status| status.as_str() == value)
        .ok_or_else(|| {
            let names: Vec<_> = SagaStatus::ALL.iter().map(|s| s.as_str()).collect();
            format!("expected one of: {}", names.join(", "))
        })
}
