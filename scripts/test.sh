#!/usr/bin/env bash
# Runs every check and test of the workspace: formatting, lints, unit and integration tests
# (the conformance suite on each backend), and doc tests. Exits non-zero on the first failure.
#
# Backends in this build: memory (in-process; needs no server). Scripts that start and stop
# broker servers by PID join here as their backends land.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, all features, warnings denied)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "the demo, as the README runs it"
cargo run --locked -p event-bus-examples --bin user-registration

step "doc tests (the README's code included)"
cargo test --workspace --all-features --locked --doc

step "unit and integration tests, the conformance suite included"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-features --locked --no-fail-fast
else
  cargo test --workspace --all-features --locked --no-fail-fast
fi
