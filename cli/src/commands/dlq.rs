//! `eventbus dlq`: dead letters taken off the dead-letter topic into the parked store, then
//! listed, shown, redriven or discarded there.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use event_bus_core::SubscriptionConfig;
use event_bus_core::dead_letter::{
    Action, DeadLetter, DeadLetterFilter, DeadLetterHandler, ParkedStore,
};
use event_store_postgres::PgParkedStore;

use crate::args::{DlqCommand, FilterArgs, Selection};
use crate::error::CliError;
use crate::progress;

use super::Context;

/// How long a pull before another command waits for one more dead letter: long enough for a
/// fresh connection's first pull to be answered (Pub/Sub's takes hundreds of milliseconds).
const QUICK_PULL: Duration = Duration::from_secs(2);

struct Dlq {
    handler: DeadLetterHandler,
    parked: Arc<PgParkedStore>,
    config: SubscriptionConfig,
    bus: event_bus_core::EventBus,
}

impl Dlq {
    async fn connect(context: &Context) -> Result<Self, CliError> {
        let parked = Arc::new(context.store().await?.parked_store());
        let bus = context.bus().await?;
        let handler = DeadLetterHandler::new(bus.broker().clone(), parked.clone())
            .policy(|_: &DeadLetter| Action::Park)
            .max_retries(context.settings.dead_letter_max_redrives);
        let config = context.dead_letters();
        Ok(Self {
            handler,
            parked,
            config,
            bus,
        })
    }

    async fn pull(&self, idle: Duration) -> Result<u64, CliError> {
        let spinner = progress::spinner("pulling dead letters");
        let pulled = self.handler.drain(&self.config, idle).await;
        spinner.finish_and_clear();
        Ok(pulled?)
    }

    async fn select(&self, selection: Selection) -> Result<Vec<DeadLetter>, CliError> {
        if let Some(id) = selection.id {
            let letter = self.parked.get(id).await?.ok_or(CliError::NotParked(id))?;
            return Ok(vec![letter]);
        }
        let filter = DeadLetterFilter {
            reason: selection.reason,
            original_topic: selection.topic,
            event_type: selection.event_type,
        };
        if !selection.all && filter == DeadLetterFilter::default() {
            return Err(CliError::NoSelection);
        }
        self.pull(QUICK_PULL).await?;
        Ok(self.parked.list(&filter, usize::MAX).await?)
    }

    async fn close(self) -> Result<(), CliError> {
        Ok(self.bus.shutdown().await?)
    }
}

fn filter(args: FilterArgs) -> DeadLetterFilter {
    DeadLetterFilter {
        reason: args.reason,
        original_topic: args.topic,
        event_type: args.event_type,
    }
}

fn summary(letter: &DeadLetter) -> String {
    format!(
        "{}  {}  {}  {}  attempts={} redrives={} failed={}",
        letter.id,
        letter.event_type.as_deref().unwrap_or("unknown"),
        letter.reason,
        if letter.original_topic.is_empty() {
            "-"
        } else {
            &letter.original_topic
        },
        letter.attempts,
        letter.redrives,
        letter.failed_since().to_rfc3339()
    )
}

fn detail(letter: &DeadLetter) -> serde_json::Value {
    let payload = serde_json::from_slice::<serde_json::Value>(&letter.message.payload)
        .unwrap_or_else(|_| String::from_utf8_lossy(&letter.message.payload).into());
    serde_json::json!({
        "id": letter.id,
        "event_id": letter.event_id,
        "event_type": letter.event_type,
        "reason": letter.reason,
        "error": letter.error,
        "attempts": letter.attempts,
        "redrives": letter.redrives,
        "original_topic": letter.original_topic,
        "subscription": letter.subscription,
        "first_failure_at": letter.first_failure_at,
        "last_failure_at": letter.last_failure_at,
        "received_at": letter.received_at,
        "key": letter.message.key,
        "headers": letter.message.headers,
        "payload": payload,
    })
}

/// Runs a dead-letter command.
pub async fn run(context: &Context, command: DlqCommand) -> Result<(), CliError> {
    let dlq = Dlq::connect(context).await?;
    match command {
        DlqCommand::Pull(args) => {
            let pulled = dlq.pull(Duration::from_millis(args.idle_ms)).await?;
            println!("pulled {pulled} dead letters into the parked store");
        }
        DlqCommand::List {
            filter: args,
            limit,
            no_pull,
        } => {
            if !no_pull {
                dlq.pull(QUICK_PULL).await?;
            }
            let letters = dlq.parked.list(&filter(args), limit).await?;
            for letter in &letters {
                println!("{}", summary(letter));
            }
            println!("{} dead letters", letters.len());
        }
        DlqCommand::Show { id } => {
            let letter = dlq.parked.get(id).await?.ok_or(CliError::NotParked(id))?;
            println!(
                "{}",
                serde_json::to_string_pretty(&detail(&letter)).unwrap_or_default()
            );
        }
        DlqCommand::Redrive { selection, dry_run } => {
            let letters = dlq.select(selection).await?;
            if dry_run {
                for letter in &letters {
                    println!("would redrive {} to {}", letter.id, letter.original_topic);
                }
                println!("would redrive {} dead letters", letters.len());
            } else {
                let bar = progress::bar(letters.len() as u64, "redriving");
                for letter in &letters {
                    dlq.handler.redrive_parked(letter.id).await?;
                    bar.inc(1);
                }
                bar.finish_and_clear();
                println!("redrove {} dead letters", letters.len());
            }
        }
        DlqCommand::Discard { selection, dry_run } => {
            let letters = dlq.select(selection).await?;
            if dry_run {
                for letter in &letters {
                    println!("would discard {}", summary(letter));
                }
                println!("would discard {} dead letters", letters.len());
            } else {
                let bar = progress::bar(letters.len() as u64, "discarding");
                for letter in &letters {
                    dlq.parked.remove(letter.id).await?;
                    bar.inc(1);
                }
                bar.finish_and_clear();
                println!("discarded {} dead letters", letters.len());
            }
        }
        DlqCommand::Stats {
            filter: args,
            no_pull,
        } => {
            if !no_pull {
                dlq.pull(QUICK_PULL).await?;
            }
            let stats = dlq.parked.stats(&filter(args)).await?;
            println!("parked: {}", stats.total);
            let groups = [
                ("by reason", &stats.by_reason),
                ("by topic", &stats.by_topic),
                ("by event type", &stats.by_event_type),
            ];
            for (title, counts) in groups {
                println!("{title}:");
                for (name, count) in counts {
                    println!("  {name}: {count}");
                }
            }
            match stats.oldest_age(Utc::now()) {
                Some(age) => println!("oldest: {} s ago", age.num_seconds()),
                None => println!("oldest: -"),
            }
        }
    }
    dlq.close().await
}
