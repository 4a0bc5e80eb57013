//! Steps carried out by other services through commands and replies over the bus, on the
//! in-memory bus and on Redis Streams: replies drive the saga forward, a failure reply
//! compensates through compensation commands, a transient one is retried, and a missing
//! reply times out.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use event_bus_core::{BusSettings, EventBus, EventEnvelope};
use event_bus_sagas::command::CommandReply;
use event_bus_sagas::{
    MemorySagaRepository, SagaDefinition, SagaOrchestrator, SagaRepository, SagaStatus,
    StartOutcome, StepError, StepPhase, command_step, participant,
};

const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// What the participants were asked, and how billing should answer.
#[derive(Clone, Default)]
struct Participants {
    received: Arc<Mutex<Vec<String>>>,
    billing_failures: Arc<Mutex<Vec<StepError>>>,
}

impl Participants {
    fn received(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }

    async fn subscribe(&self, bus: &Arc<EventBus>, with_billing: bool) {
        let this = self.clone();
        let inventory = Arc::new(participant(bus.clone(), move |command: EventEnvelope| {
            this.received
                .lock()
                .unwrap()
                .push(command.event_type.clone());
            async move { Ok(serde_json::json!({ "reservation": command.payload["sku"] })) }
        }));
        for command in ["inventory.reserve", "inventory.release"] {
            bus.subscribe(bus.subscription(command, "inventory"), inventory.clone())
                .await
                .unwrap();
        }
        if !with_billing {
            return;
        }
        let this = self.clone();
        let billing = participant(bus.clone(), move |command: EventEnvelope| {
            this.received
                .lock()
                .unwrap()
                .push(command.event_type.clone());
            let failure = this.billing_failures.lock().unwrap().pop();
            async move {
                match failure {
                    Some(error) => Err(error),
                    None => Ok(serde_json::json!({ "charged": command.payload["amount"] })),
                }
            }
        });
        let billing = Arc::new(billing);
        for command in ["billing.charge", "billing.refund"] {
            bus.subscribe(bus.subscription(command, "billing"), billing.clone())
                .await
                .unwrap();
        }
    }
}

fn order_saga(reply_timeout: Duration) -> SagaDefinition {
    SagaDefinition::new("order", "order.placed")
        .step(
            "reserve",
            command_step(
                "inventory.reserve",
                Some("inventory.release"),
                reply_timeout,
                |ctx| ctx.data["trigger"].clone(),
            ),
        )
        .step(
            "charge",
            command_step(
                "billing.charge",
                Some("billing.refund"),
                reply_timeout,
                |ctx| ctx.data["trigger"].clone(),
            ),
        )
}

async fn redis_bus() -> Arc<EventBus> {
    let prefix = format!("saga-test-{}", uuid::Uuid::now_v7().simple());
    let settings = BusSettings::from_vars([
        ("EVENT_BUS_TYPE", "redis"),
        ("REDIS_EVENT_URL", "redis://127.0.0.1:6379"),
        ("EVENT_BUS_TOPIC_PREFIX", prefix.as_str()),
    ])
    .unwrap();
    Arc::new(
        event_bus_brokers::connect(settings)
            .await
            .expect("Redis on 127.0.0.1:6379"),
    )
}

struct Run {
    status: SagaStatus,
    data: serde_json::Value,
    compensated: Vec<String>,
}

async fn run_order(
    bus: Arc<EventBus>,
    participants: &Participants,
    with_billing: bool,
    reply_timeout: Duration,
) -> Run {
    participants.subscribe(&bus, with_billing).await;
    let repository = Arc::new(MemorySagaRepository::new());
    let orchestrator = SagaOrchestrator::new(bus.clone(), repository.clone(), settings());
    orchestrator.register(order_saga(reply_timeout)).unwrap();
    orchestrator.subscribe().await.unwrap();
    let placed = EventEnvelope::builder(
        "order.placed",
        serde_json::json!({"sku": "A-1", "amount": 42}),
    )
    .idempotency_key(format!("order-{}", uuid::Uuid::now_v7()))
    .build();
    let StartOutcome::Started(id) = orchestrator.start("order", &placed).await.unwrap() else {
        panic!("started expected");
    };
    let state = orchestrator.wait_finished(id, WAIT).await.unwrap();
    let compensated = succeeded(
        &repository.steps(id).await.unwrap(),
        StepPhase::Compensation,
    );
    orchestrator.shutdown().await;
    bus.shutdown().await.unwrap();
    Run {
        status: state.status,
        data: state.data,
        compensated,
    }
}

async fn replies_drive_the_saga_to_completion(bus: Arc<EventBus>) {
    let participants = Participants::default();
    let run = run_order(bus, &participants, true, REPLY_TIMEOUT).await;
    assert_eq!(run.status, SagaStatus::Completed);
    assert_eq!(run.data["reserve"]["reservation"], "A-1");
    assert_eq!(run.data["charge"]["charged"], 42);
    assert_eq!(
        participants.received(),
        ["inventory.reserve", "billing.charge"]
    );
}

async fn a_failure_reply_compensates_through_commands(bus: Arc<EventBus>) {
    let participants = Participants::default();
    participants
        .billing_failures
        .lock()
        .unwrap()
        .push(StepError::permanent("card declined"));
    let run = run_order(bus, &participants, true, REPLY_TIMEOUT).await;
    assert_eq!(run.status, SagaStatus::Compensated);
    assert_eq!(run.compensated, ["reserve"]);
    assert_eq!(
        participants.received(),
        ["inventory.reserve", "billing.charge", "inventory.release"]
    );
}

#[tokio::test]
async fn memory_replies_drive_the_saga_to_completion() {
    replies_drive_the_saga_to_completion(memory_bus()).await;
}

#[tokio::test]
async fn redis_replies_drive_the_saga_to_completion() {
    replies_drive_the_saga_to_completion(redis_bus().await).await;
}

#[tokio::test]
async fn memory_a_failure_reply_compensates_through_commands() {
    a_failure_reply_compensates_through_commands(memory_bus()).await;
}

#[tokio::test]
async fn redis_a_failure_reply_compensates_through_commands() {
    a_failure_reply_compensates_through_commands(redis_bus().await).await;
}

#[tokio::test]
async fn a_transient_failure_reply_sends_the_command_again() {
    let participants = Participants::default();
    participants.billing_failures.lock().unwrap().extend([
        StepError::transient("gateway busy"),
        StepError::transient("gateway busy"),
    ]);
    let run = run_order(memory_bus(), &participants, true, REPLY_TIMEOUT).await;
    assert_eq!(run.status, SagaStatus::Completed);
    assert_eq!(
        participants.received(),
        [
            "inventory.reserve",
            "billing.charge",
            "billing.charge",
            "billing.charge"
        ]
    );
}

#[tokio::test]
async fn a_command_nobody_answers_times_out_and_compensates() {
    let participants = Participants::default();
    let run = run_order(
        memory_bus(),
        &participants,
        false,
        Duration::from_millis(100),
    )
    .await;
    assert_eq!(run.status, SagaStatus::Compensated);
    assert_eq!(run.compensated, ["reserve"]);
    assert_eq!(
        participants.received(),
        ["inventory.reserve", "inventory.release"]
    );
}

#[test]
fn replies_are_tagged_json() {
    let reply = CommandReply::Failed {
        error: "card declined".to_owned(),
        transient: false,
    };
    assert_eq!(
        serde_json::to_value(&reply).unwrap(),
        serde_json::json!({"outcome": "failed", "error": "card declined", "transient": false})
    );
}
