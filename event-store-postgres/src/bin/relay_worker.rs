//! A relay process for the several-relays test: relays the outbox of one schema to the broker
//! `EVENT_BUS_TYPE` names until its standard input closes.
//!
//! ```text
//! outbox-relay-worker <database-url> <schema>    (bus settings from the environment)
//! ```
//!
//! Prints `ready` once relaying, then `publish <event-id>` just before each publish, so a test
//! that kills it knows which events it may have published. `RELAY_BATCH_SIZE` (default 50) and
//! `RELAY_LEASE_MS` (default 2000) set the batch and the claim's lease.

use std::error::Error;
use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use event_bus_core::transport::Publisher;
use event_bus_core::{BusError, BusSettings, EventEnvelope, Message};
use event_store::outbox::OutboxRelay;
use event_store_postgres::PgEventStore;
use tokio_util::sync::CancellationToken;

/// Prints each message's event id, then hands the message on.
struct Printing(Arc<dyn Publisher>);

#[async_trait]
impl Publisher for Printing {
    async fn publish(&self, topic: &str, message: Message) -> Result<(), BusError> {
        let id = EventEnvelope::from_message(&message)
            .map_or_else(|_| "?".to_owned(), |e| e.id.to_string());
        println!("publish {id}");
        self.0.publish(topic, message).await
    }

    async fn close(&self) -> Result<(), BusError> {
        self.0.close().await
    }
}

fn number(variable: &str, default: u64) -> u64 {
    std::env::var(variable)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("outbox-relay-worker: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Vec<String>) -> Result<(), Box<dyn Error>> {
    let [url, schema] = args.as_slice() else {
        return Err("usage: outbox-relay-worker <database-url> <schema>".into());
    };
    let store = PgEventStore::connect(url, schema).await?;
    let bus = event_bus_brokers::connect(BusSettings::from_env()?).await?;
    let publisher: Arc<dyn Publisher> = bus.broker().clone();
    let relay = OutboxRelay::new(
        Arc::new(store),
        Arc::new(Printing(publisher)),
        bus.topics().clone(),
    )
    .batch_size(number("RELAY_BATCH_SIZE", 50) as usize)
    .lease(Duration::from_millis(number("RELAY_LEASE_MS", 2_000)));
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        stop.cancel();
    });
    println!("ready");
    relay.run(Duration::from_millis(20), shutdown).await;
    bus.shutdown().await?;
    Ok(())
}
