//! A consumer process for the shared-dedup, member-crash and slow-handler tests: handles
//! `order.placed` events as the handler `billing` on the bus the environment describes
//! (`connect_bus`, so `EVENT_BUS_DEDUP_STORE=postgres` works), until its standard input closes
//! or it is killed. The handler takes `TEST_HANDLER_MILLIS` milliseconds (default 0); with
//! `TEST_EPHEMERAL_HANDLER=name` it is that handler instead, in an instance-scoped group.
//!
//! Prints `ready` once subscribed, `started <event-id>` when the handler starts,
//! `handled <event-id>` when it finishes, and `settled <n> dead-lettered <m>` whenever the
//! subscription's count of settled deliveries (handled, duplicates acknowledged, skipped,
//! dead-lettered) changes.

use std::error::Error;
use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use event_bus_core::{BusSettings, HandlerError, handler_fn};
use event_store_postgres::connect_bus;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dedup-consumer-worker: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let bus = connect_bus(BusSettings::from_env()?).await?;
    let takes = Duration::from_millis(
        std::env::var("TEST_HANDLER_MILLIS").map_or(Ok(0), |millis| millis.parse())?,
    );
    let handler = handler_fn(move |event| {
        println!("started {}", event.id);
        async move {
            tokio::time::sleep(takes).await;
            println!("handled {}", event.id);
            Ok::<(), HandlerError>(())
        }
    });
    let config = match std::env::var("TEST_EPHEMERAL_HANDLER") {
        Ok(name) => bus.subscription("order.placed", &name).ephemeral(),
        Err(_) => bus.subscription("order.placed", "billing"),
    };
    let subscription = bus.subscribe(config, handler).await?;
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        stop.cancel();
    });
    println!("ready");
    let mut reported = None;
    while !shutdown.is_cancelled() {
        let stats = subscription.stats().snapshot();
        let now = (stats.settled(), stats.dead_lettered);
        if reported != Some(now) {
            println!("settled {} dead-lettered {}", now.0, now.1);
            reported = Some(now);
        }
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    bus.shutdown().await?;
    Ok(())
}
