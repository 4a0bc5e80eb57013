//! `eventbus sagas` against a saga store in PostgreSQL (127.0.0.1:5432), filled by a real
//! orchestrator on the in-memory bus; each test under its own schema.

use std::sync::Arc;
use std::time::Duration;

use assert_cmd::Command;
use event_bus_core::{BusSettings, EventBus, EventEnvelope, InMemoryBroker};
use event_bus_sagas::{
    PgSagaRepository, SagaDefinition, SagaOrchestrator, SagaSettings, SagaStatus, StepError,
    saga_id, step_fn,
};
use predicates::prelude::*;

const DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn eventbus(schema: &str) -> Command {
    let mut command = Command::cargo_bin("eventbus").unwrap();
    command
        .env("SAGA_DATABASE_URL", DATABASE_URL)
        .env("SAGA_DATABASE_SCHEMA", schema)
        .timeout(Duration::from_secs(60));
    command
}

fn stdout(command: &mut Command) -> String {
    String::from_utf8(command.assert().success().get_output().stdout.clone()).unwrap()
}

/// Runs two `order` sagas to their end: `order-ok` completes, `order-declined` is compensated.
async fn run_two_sagas(schema: &str) {
    let bus = Arc::new(EventBus::new(
        Arc::new(InMemoryBroker::new()),
        BusSettings::default(),
    ));
    let repository = PgSagaRepository::connect(DATABASE_URL, schema)
        .await
        .unwrap();
    let settings = SagaSettings::from_vars([("SAGA_RETRY_INITIAL_BACKOFF_MS", "1")]).unwrap();
    let orchestrator = SagaOrchestrator::new(bus.clone(), Arc::new(repository), settings);
    orchestrator
        .register(
            SagaDefinition::new("order", "order.placed")
                .step(
                    "reserve_stock",
                    step_fn(
                        |_ctx| async { Ok(serde_json::json!({})) },
                        |_ctx| async { Ok(()) },
                    ),
                )
                .step(
                    "charge_card",
                    step_fn(
                        |ctx| async move {
                            if ctx.data["trigger"]["declined"] == true {
                                Err(StepError::permanent("card declined"))
                            } else {
                                Ok(serde_json::json!({}))
                            }
                        },
                        |_ctx| async { Ok(()) },
                    ),
                ),
        )
        .unwrap();
    orchestrator.subscribe().await.unwrap();
    for (key, declined) in [("order-ok", false), ("order-declined", true)] {
        let placed =
            EventEnvelope::builder("order.placed", serde_json::json!({ "declined": declined }))
                .idempotency_key(key)
                .build();
        bus.publish(&placed).await.unwrap();
        orchestrator
            .wait_finished(saga_id("order", key), Duration::from_secs(20))
            .await
            .unwrap();
    }
    orchestrator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sagas_are_listed_by_status_and_shown_with_their_steps() {
    let schema = format!("evbus_sagas_{}", uuid::Uuid::now_v7().simple());
    run_two_sagas(&schema).await;
    let completed = saga_id("order", "order-ok");
    let compensated = saga_id("order", "order-declined");

    let all = stdout(eventbus(&schema).args(["sagas", "list"]));
    assert!(all.contains(&completed.to_string()), "{all}");
    assert!(all.contains(&compensated.to_string()), "{all}");
    assert!(all.ends_with("2 saga(s)\n"), "{all}");

    let only_compensated =
        stdout(eventbus(&schema).args(["sagas", "list", "--status", "compensated"]));
    assert!(
        only_compensated.contains(&compensated.to_string()),
        "{only_compensated}"
    );
    assert!(
        !only_compensated.contains(&completed.to_string()),
        "{only_compensated}"
    );
    assert!(only_compensated.ends_with("1 saga(s)\n"));

    let shown = stdout(eventbus(&schema).args(["sagas", "show", &compensated.to_string()]));
    assert!(
        shown.contains(&format!("status: {}", SagaStatus::Compensated)),
        "{shown}"
    );
    assert!(shown.contains("card declined"), "{shown}");
    assert!(
        shown.contains("charge_card action attempt 1 failed"),
        "{shown}"
    );
    assert!(
        shown.contains("reserve_stock compensation attempt 1 succeeded"),
        "{shown}"
    );
    assert!(
        !shown.contains("charge_card compensation"),
        "only completed steps are compensated: {shown}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_saga_or_status_is_a_one_line_error() {
    let schema = format!("evbus_sagas_{}", uuid::Uuid::now_v7().simple());
    let missing = uuid::Uuid::now_v7();
    eventbus(&schema)
        .args(["sagas", "show", &missing.to_string()])
        .assert()
        .failure()
        .stderr(predicate::eq(format!("error: no saga with id {missing}\n")));
    eventbus(&schema)
        .args(["sagas", "list", "--status", "stuck"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "expected one of: running, compensating, completed, compensated, failed",
        ));
}
