#!/usr/bin/env bash
# Runs every check and test of the workspace: formatting, lints, unit and integration tests
# (the conformance suite on each backend), and doc tests. Exits non-zero on the first failure.
#
# Redis, RabbitMQ and PostgreSQL run against real servers on 127.0.0.1: a server already
# running is used; a missing one is installed from Debian's packages, started, and stopped by
# PID at exit (scripts/services.sh). Kafka runs against Tansu with SQLite storage, built once
# from crates.io into ~/.cache/event-bus (about 10 minutes) when missing: one on
# 127.0.0.1:9092, and one of its own for each Kafka conformance and restart test. The Pub/Sub
# tests use Google's emulator on 127.0.0.1:8085, started the same way when it is installed (a
# clear error when it is not). NATS (JetStream) runs on 127.0.0.1:4222, installed from Debian's
# nats-server package when missing. Restart tests, and every NATS test, start servers of their own.
# The CloudEvents interop tests run a Python peer from a venv made once under ~/.cache/event-bus
# from tests/interop/requirements.txt (PyPI); without it they fail, saying how to make it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

step() { printf '\n==> %s\n' "$*"; }

# A fresh build gains nothing from incremental compilation, which only costs disk.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, all features, warnings denied)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "broker servers"
ensure_redis
ensure_postgres
ensure_rabbitmq
ensure_pubsub_emulator
export PUBSUB_EMULATOR_HOST="127.0.0.1:$PUBSUB_EMULATOR_PORT"
ensure_tansu
ensure_nats
ensure_python_interop

step "the demo, as the README runs it, on every backend"
cargo run --locked -p event-bus-examples --bin user-registration
EVENT_BUS_TYPE=redis EVENT_BUS_TOPIC_PREFIX="demo-$$" cargo run --locked -p event-bus-examples --bin user-registration
EVENT_BUS_TYPE=rabbitmq EVENT_BUS_TOPIC_PREFIX="demo-$$" RABBITMQ_QUEUE_EXPIRES_SECONDS=60 \
  cargo run --locked -p event-bus-examples --bin user-registration
EVENT_BUS_TYPE=pubsub PUBSUB_EMULATOR_HOST="127.0.0.1:$PUBSUB_EMULATOR_PORT" EVENT_BUS_TOPIC_PREFIX="demo-$$" \
  cargo run --locked -p event-bus-examples --bin user-registration
EVENT_BUS_TYPE=kafka EVENT_BUS_TOPIC_PREFIX="demo-$$" KAFKA_SESSION_TIMEOUT_MS=6000 \
  cargo run --locked -p event-bus-examples --bin user-registration
EVENT_BUS_TYPE=nats NATS_URL="nats://127.0.0.1:$NATS_PORT" EVENT_BUS_TOPIC_PREFIX="demo-$$" \
  cargo run --locked -p event-bus-examples --bin user-registration

step "the saga examples, on memory and Redis; the password reset on every backend"
for saga_example in user_registration_saga gdpr_deletion_saga gdpr_export_saga voice_training_saga password_reset_saga; do
  cargo run --locked -p event-bus-sagas --example "$saga_example"
  EVENT_BUS_TYPE=redis EVENT_BUS_TOPIC_PREFIX="demo-saga-$$" cargo run --locked -p event-bus-sagas --example "$saga_example"
done
EVENT_BUS_TYPE=rabbitmq EVENT_BUS_TOPIC_PREFIX="demo-saga-$$" RABBITMQ_QUEUE_EXPIRES_SECONDS=60 \
  cargo run --locked -p event-bus-sagas --example password_reset_saga
EVENT_BUS_TYPE=pubsub PUBSUB_EMULATOR_HOST="127.0.0.1:$PUBSUB_EMULATOR_PORT" EVENT_BUS_TOPIC_PREFIX="demo-saga-$$" \
  cargo run --locked -p event-bus-sagas --example password_reset_saga
EVENT_BUS_TYPE=kafka EVENT_BUS_TOPIC_PREFIX="demo-saga-$$" KAFKA_SESSION_TIMEOUT_MS=6000 \
  cargo run --locked -p event-bus-sagas --example password_reset_saga
EVENT_BUS_TYPE=nats NATS_URL="nats://127.0.0.1:$NATS_PORT" EVENT_BUS_TOPIC_PREFIX="demo-saga-$$" \
  cargo run --locked -p event-bus-sagas --example password_reset_saga

step "the conversation-history example (event store, outbox, snapshots)"
EVENT_BUS_TYPE=redis EVENT_BUS_TOPIC_PREFIX="conversation-$$" cargo run --locked -p event-bus-examples --bin conversation-history

step "doc tests (the README's code included)"
cargo test --workspace --all-features --locked --doc

step "unit and integration tests, the conformance suite included"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-features --locked --no-fail-fast
else
  cargo test --workspace --all-features --locked --no-fail-fast
fi
