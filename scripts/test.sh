#!/usr/bin/env bash
# Runs every check and test of the workspace: formatting, lints, unit and integration tests
# (the conformance suite on each backend), and doc tests. Exits non-zero on the first failure.
#
# Redis runs the suite against a real server on 127.0.0.1: a server already
# running is used; a missing one is installed from Debian's packages, started, and stopped by
# PID at exit (scripts/services.sh). Restart tests start servers of their own.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, all features, warnings denied)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "broker servers"
ensure_redis

step "the demo, as the README runs it, on every backend"
cargo run --locked -p event-bus-examples --bin user-registration
EVENT_BUS_TYPE=redis EVENT_BUS_TOPIC_PREFIX="demo-$$" cargo run --locked -p event-bus-examples --bin user-registration

step "doc tests (the README's code included)"
cargo test --workspace --all-features --locked --doc

step "unit and integration tests, the conformance suite included"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-features --locked --no-fail-fast
else
  cargo test --workspace --all-features --locked --no-fail-fast
fi
