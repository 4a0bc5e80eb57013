#!/usr/bin/env bash
# Makes sure the broker servers the tests use are up on 127.0.0.1. A server already running is
# used as it is; a missing one is installed from Debian's packages and started, and whatever
# this script started is stopped by PID when the calling script exits.
# Source it, then call: ensure_redis, ensure_rabbitmq, ensure_postgres, ensure_pubsub_emulator,
# ensure_tansu, ensure_nats (ports: REDIS_PORT, RABBITMQ_PORT, POSTGRES_PORT, PUBSUB_EMULATOR_PORT,
# KAFKA_PORT, NATS_PORT), and ensure_python_interop (the Python venv of the interop tests).

SERVICES_DIR=$(mktemp -d -t event-bus-services.XXXXXX)
chmod 1777 "$SERVICES_DIR"  # the rabbitmq user writes its PID file here
REDIS_PORT=${REDIS_PORT:-6379}
RABBITMQ_PORT=${RABBITMQ_PORT:-5672}
POSTGRES_PORT=${POSTGRES_PORT:-5432}
PUBSUB_EMULATOR_PORT=${PUBSUB_EMULATOR_PORT:-8085}
PUBSUB_EMULATOR_BIN=${PUBSUB_EMULATOR_BIN:-/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator}
KAFKA_PORT=${KAFKA_PORT:-9092}
NATS_PORT=${NATS_PORT:-4222}
# Tansu (a Kafka-compatible broker) from crates.io, built once with its SQLite storage engine
# (feature libsql) into this folder; TANSU_BIN names another build. The Kafka tests find it
# through TANSU_BIN, which ensure_tansu exports.
TANSU_VERSION=0.6.0
TANSU_ROOT=${TANSU_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/event-bus/tansu-$TANSU_VERSION-libsql}
# The Python venv of the CloudEvents interop tests (tests/interop/requirements.txt from PyPI),
# made once per version of that file; ensure_python_interop exports its Python as
# EVENT_BUS_INTEROP_PYTHON, which the tests need.
INTEROP_REQUIREMENTS=tests/interop/requirements.txt
INTEROP_CACHE=${INTEROP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/event-bus}
STARTED_PIDS=()

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() {
  local name=$1 port=$2 seconds=$3
  for _ in $(seq "$seconds"); do
    port_open "$port" && return 0
    sleep 1
  done
  echo "error: $name did not open 127.0.0.1:$port within ${seconds}s" >&2
  return 1
}

wait_for_pid_file() {
  local file=$1
  for _ in $(seq 60); do
    [ -s "$file" ] && return 0
    sleep 1
  done
  echo "error: no PID file at $file" >&2
  return 1
}

install_package() {
  local binary=$1 package=$2
  command -v "$binary" >/dev/null 2>&1 && return 0
  apt_install "$package"
}

# Installs a Debian package (root only).
apt_install() {
  local package=$1
  echo "installing $package from Debian's packages"
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: installing $package needs root (apt-get install $package)" >&2
    return 1
  fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
}

stop_started_services() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      echo "stopping service PID $pid"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    fi
  done
  rm -rf "$SERVICES_DIR"
}
trap stop_started_services EXIT

ensure_redis() {
  if port_open "$REDIS_PORT"; then echo "redis: using the server on 127.0.0.1:$REDIS_PORT"; return 0; fi
  install_package redis-server redis-server || return 1
  local pid_file="$SERVICES_DIR/redis.pid"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$SERVICES_DIR" --pidfile "$pid_file" --logfile "$SERVICES_DIR/redis.log"
  wait_for_pid_file "$pid_file" || return 1
  STARTED_PIDS+=("$(cat "$pid_file")")
  wait_for_port redis "$REDIS_PORT" 30
  echo "redis: started PID $(cat "$pid_file") on 127.0.0.1:$REDIS_PORT"
}

ensure_rabbitmq() {
  if port_open "$RABBITMQ_PORT"; then echo "rabbitmq: using the server on 127.0.0.1:$RABBITMQ_PORT"; return 0; fi
  install_package rabbitmq-server rabbitmq-server || return 1
  local pid_file="$SERVICES_DIR/rabbitmq.pid"
  RABBITMQ_PID_FILE="$pid_file" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$RABBITMQ_PORT" \
    rabbitmq-server -detached
  wait_for_pid_file "$pid_file" || return 1
  STARTED_PIDS+=("$(cat "$pid_file")")
  wait_for_port rabbitmq "$RABBITMQ_PORT" 120
  echo "rabbitmq: started PID $(cat "$pid_file") on 127.0.0.1:$RABBITMQ_PORT"
}

ensure_postgres() {
  if port_open "$POSTGRES_PORT"; then echo "postgres: using the server on 127.0.0.1:$POSTGRES_PORT"; return 0; fi
  install_package pg_ctlcluster postgresql || return 1
  local bin data="$SERVICES_DIR/postgres"
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  mkdir -p "$data" && chown postgres "$data"
  # PostgreSQL refuses to run as root: initdb and the server run as the postgres user, trust auth.
  su postgres -c "$bin/initdb -D '$data' -A trust -U postgres" >/dev/null
  su postgres -c "$bin/pg_ctl -D '$data' -l '$data/server.log' -w \
    -o \"-c listen_addresses=127.0.0.1 -p $POSTGRES_PORT -k '$data'\" start" >/dev/null
  STARTED_PIDS+=("$(head -1 "$data/postmaster.pid")")
  wait_for_port postgres "$POSTGRES_PORT" 30
  echo "postgres: started PID $(head -1 "$data/postmaster.pid") on 127.0.0.1:$POSTGRES_PORT"
}

ensure_pubsub_emulator() {
  if port_open "$PUBSUB_EMULATOR_PORT"; then
    echo "pubsub: using the emulator on 127.0.0.1:$PUBSUB_EMULATOR_PORT"; return 0
  fi
  if [ ! -x "$PUBSUB_EMULATOR_BIN" ]; then
    echo "error: the Google Cloud Pub/Sub emulator is missing: no executable at $PUBSUB_EMULATOR_BIN" >&2
    echo "       install it (gcloud components install pubsub-emulator, or Debian's google-cloud-cli-pubsub-emulator; it needs Java 17)" >&2
    echo "       or set PUBSUB_EMULATOR_BIN, or start one on 127.0.0.1:$PUBSUB_EMULATOR_PORT yourself" >&2
    return 1
  fi
  local data="$SERVICES_DIR/pubsub"
  mkdir -p "$data"
  "$PUBSUB_EMULATOR_BIN" --host=127.0.0.1 --port="$PUBSUB_EMULATOR_PORT" --data-dir="$data" \
    >"$data/emulator.log" 2>&1 &
  local pid=$!
  STARTED_PIDS+=("$pid")
  for _ in $(seq 120); do
    if curl -fsS "http://127.0.0.1:$PUBSUB_EMULATOR_PORT/" 2>/dev/null | grep -q Ok; then
      echo "pubsub: started the emulator, PID $pid, on 127.0.0.1:$PUBSUB_EMULATOR_PORT"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "error: the Pub/Sub emulator exited; its log:" >&2; cat "$data/emulator.log" >&2; return 1
    fi
    sleep 1
  done
  echo "error: the Pub/Sub emulator did not answer on 127.0.0.1:$PUBSUB_EMULATOR_PORT within 120s" >&2
  return 1
}

# Prints the path of the tansu binary, building it into $TANSU_ROOT when missing.
tansu_binary() {
  if [ -n "${TANSU_BIN:-}" ]; then echo "$TANSU_BIN"; return 0; fi
  local binary="$TANSU_ROOT/bin/tansu"
  if [ ! -x "$binary" ]; then
    echo "building Tansu $TANSU_VERSION with SQLite storage into $TANSU_ROOT" >&2
    echo "(cargo install tansu --features libsql: about 10 minutes on 2 cores, once; later runs reuse it)" >&2
    # The build's target folder goes with the services folder at exit.
    CARGO_TARGET_DIR="$SERVICES_DIR/tansu-build" CARGO_INCREMENTAL=0 \
      cargo install tansu --locked --version "$TANSU_VERSION" --features libsql --root "$TANSU_ROOT" >&2 \
      || { echo "error: building Tansu failed" >&2; return 1; }
    rm -rf "$SERVICES_DIR/tansu-build"
  fi
  echo "$binary"
}

# Tansu 0.6's SQLite schema has no index on its header table, which it queries once per
# fetched record: without this one, a consumer catching up on a backlog stalls the broker.
TANSU_HEADER_INDEX="create index if not exists header_topition_offset on header (topition, offset_id);"

# Builds Tansu when missing and exports TANSU_BIN (the tests start brokers of their own with
# it, and index them with the sqlite3 shell); starts one on 127.0.0.1:$KAFKA_PORT, its data in
# a SQLite file, unless one listens there.
ensure_tansu() {
  local binary data="$SERVICES_DIR/tansu"
  binary=$(tansu_binary) || return 1
  export TANSU_BIN="$binary"
  install_package sqlite3 sqlite3 || return 1
  if port_open "$KAFKA_PORT"; then echo "kafka: using the broker on 127.0.0.1:$KAFKA_PORT"; return 0; fi
  mkdir -p "$data"
  # The SQLite URL is relative to the working folder.
  (cd "$data" && exec "$binary" broker --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" --storage-engine sqlite://tansu.db \
    >"$data/tansu.log" 2>&1) &
  local pid=$!
  STARTED_PIDS+=("$pid")
  wait_for_port tansu "$KAFKA_PORT" 30 || { cat "$data/tansu.log" >&2; return 1; }
  sqlite3 -cmd ".timeout 10000" "$data/tansu.db" "$TANSU_HEADER_INDEX" || return 1
  echo "kafka: started Tansu $TANSU_VERSION (SQLite storage), PID $pid, on 127.0.0.1:$KAFKA_PORT"
}

# Prints the nats-server binary (Debian's package puts it in /usr/sbin), installing the package
# when it is missing.
nats_server_binary() {
  local binary
  binary=$(command -v nats-server || true)
  if [ -z "$binary" ] && [ -x /usr/sbin/nats-server ]; then binary=/usr/sbin/nats-server; fi
  if [ -z "$binary" ]; then
    install_package nats-server nats-server >&2 || return 1
    binary=$(command -v nats-server || echo /usr/sbin/nats-server)
  fi
  echo "$binary"
}

# A NATS server with JetStream on 127.0.0.1:$NATS_PORT, its store under the services folder.
# Exports NATS_SERVER_BIN, which the tests' private servers (tests/src/nats_server.rs) run.
ensure_nats() {
  local binary
  binary=$(nats_server_binary) || return 1
  export NATS_SERVER_BIN="$binary"
  if port_open "$NATS_PORT"; then echo "nats: using the server on 127.0.0.1:$NATS_PORT"; return 0; fi
  mkdir -p "$SERVICES_DIR/nats"
  "$binary" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$SERVICES_DIR/nats" >"$SERVICES_DIR/nats.log" 2>&1 &
  local pid=$!
  STARTED_PIDS+=("$pid")
  wait_for_port nats "$NATS_PORT" 30 || { cat "$SERVICES_DIR/nats.log" >&2; return 1; }
  echo "nats: started PID $pid on 127.0.0.1:$NATS_PORT (JetStream, store in $SERVICES_DIR/nats)"
}

# Makes the interop venv when missing (python3 with venv; Debian's python3-venv is installed
# when it lacks) and exports EVENT_BUS_INTEROP_PYTHON. The venv's folder is named after a hash
# of the requirements, so a changed file makes a new one and an unchanged one is reused.
ensure_python_interop() {
  local hash venv
  hash=$(sha256sum "$INTEROP_REQUIREMENTS" | cut -c1-12)
  venv="$INTEROP_CACHE/python-interop-$hash"
  if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
    echo "making the interop venv $venv from $INTEROP_REQUIREMENTS (PyPI; once)"
    install_package python3 python3 || return 1
    python3 -m venv --help >/dev/null 2>&1 && python3 -c 'import ensurepip' 2>/dev/null \
      || apt_install python3-venv || return 1
    rm -rf "$venv"
    python3 -m venv "$venv" || { echo "error: python3 -m venv $venv failed" >&2; return 1; }
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$INTEROP_REQUIREMENTS" \
      || { echo "error: installing $INTEROP_REQUIREMENTS into $venv failed" >&2; return 1; }
    touch "$venv/.complete"
  fi
  export EVENT_BUS_INTEROP_PYTHON="$venv/bin/python"
  echo "interop: Python peer $EVENT_BUS_INTEROP_PYTHON"
}
