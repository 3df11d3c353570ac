#!/usr/bin/env bash
# The local platform as processes: infrastructure, the Dapr scheduler, and
# every service with its daprd sidecar through Dapr multi-app run (dapr.yaml).
#
#   scripts/stack.sh up      install what is missing, start everything, wait until ready
#                            (REPLICAS=2: two instances of every service, scripts/lib/replicas.sh)
#   scripts/stack.sh down    stop everything `up` started; no process is left behind
#   scripts/stack.sh status
#
# Logs: .run/logs/ (stack.log has every service and sidecar, prefixed).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
run_dir="${PLATFORM_RUN_DIR:-$here/.run}"
log_dir="$run_dir/logs"
bin_dir="${DAPR_BIN_DIR:-$HOME/.dapr/bin}"
# Seconds every service and sidecar has to become ready, and the scheduler.
ready_timeout="${STACK_READY_TIMEOUT:-120}"
scheduler_timeout="${SCHEDULER_READY_TIMEOUT:-60}"
# name:app-port:sidecar-http-port, as in dapr.yaml
services=(auth:8001:3501 payments:8002:3502 bookkeeping:8003:3503 communication:8004:3504 bookings:8005:3510)

log() { printf '[stack] %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/processes.sh
. "$here/scripts/lib/processes.sh"
# shellcheck source=scripts/lib/readiness.sh
. "$here/scripts/lib/readiness.sh"
# shellcheck source=scripts/lib/mtls.sh
. "$here/scripts/lib/mtls.sh"
# shellcheck source=scripts/lib/secrets.sh
. "$here/scripts/lib/secrets.sh"
. "$here/scripts/lib/gateway.sh" # edge gateway: Caddy :8000 + gateway daprds (ADR 0025)
. "$here/scripts/lib/observability.sh" # trace backend + Prometheus (issue 14)
. "$here/scripts/lib/replicas.sh" # REPLICAS=N: more instances of every service (ADR 0045)

export PATH="$bin_dir:$HOME/.cargo/bin:$PATH"
export REDIS_HOST="${REDIS_HOST:-127.0.0.1:6379}"
export PLATFORM_NAME_RESOLUTION_DB="$run_dir/name-resolution.db"
export STATEMENTS_DIR="${STATEMENTS_DIR:-$run_dir/files}"
# Where communication's bindings reach the provider sandboxes (sandboxes/run.sh).
export COMMUNICATION_SMTP_HOST="${COMMUNICATION_SMTP_HOST:-127.0.0.1}"
export COMMUNICATION_SMTP_PORT="${COMMUNICATION_SMTP_PORT:-2525}"
export COMMUNICATION_SMS_PRIMARY_URL="${COMMUNICATION_SMS_PRIMARY_URL:-http://127.0.0.1:8020/sms-primary}"
export COMMUNICATION_SMS_SECONDARY_URL="${COMMUNICATION_SMS_SECONDARY_URL:-http://127.0.0.1:8020/sms-secondary}"
export COMMUNICATION_PUSH_URL="${COMMUNICATION_PUSH_URL:-http://127.0.0.1:8020/push}"
# Where the sidecars find the pluggable components' sockets (scripts/pluggable.sh).
export DAPR_COMPONENTS_SOCKETS_FOLDER="${DAPR_COMPONENTS_SOCKETS_FOLDER:-$run_dir/sockets}"
# The CLI looks for <DAPR_RUNTIME_PATH>/.dapr/bin/daprd.
export DAPR_RUNTIME_PATH="${DAPR_RUNTIME_PATH:-$HOME}"

# stop_group <pidfile> <name> <expected command line> [leader-INT]
# Stops the process group led by the pid: SIGTERM to the group (or, with
# leader-INT, SIGINT to the leader alone, which stops the rest itself), waits
# up to 15 s for every process of the group to exit, then SIGKILL.
stop_group() {
  local pidfile="$1" name="$2" expected="$3" how="${4:-group-TERM}" pid
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  if ! alive "$pidfile" "$expected"; then rm -f "$pidfile"; return 0; fi
  if [ "$how" = leader-INT ]; then
    kill -INT "$pid" 2>/dev/null || true
  else
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  fi
  for _ in $(seq 150); do [ -z "$(living_in_group "$pid")" ] && break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  log "$name stopped"
  # Anything of the group still running (grandchildren) goes too.
  pkill -KILL -g "$pid" 2>/dev/null || true
  sleep 0.2
  local left
  left="$(living_in_group "$pid")"
  if [ -n "$left" ]; then
    log "processes of $name are still running:"; echo "$left" >&2; return 1
  fi
  rm -f "$pidfile"
}

# Processes of a process group that are still running (zombies are gone
# already: they only wait for a parent that may never reap them).
living_in_group() {
  local p
  for p in $(pgrep -g "$1" 2>/dev/null); do
    [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" = "Z" ] && continue
    tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null && echo " (pid $p)"
  done
}

start_scheduler() {
  if alive "$run_dir/scheduler.pid" scheduler; then log "scheduler already running"; return; fi
  mkdir -p "$run_dir/scheduler"
  # shellcheck disable=SC2046 # one flag per line, no spaces
  setsid "$bin_dir/scheduler" --port 4506 --listen-address 127.0.0.1 $(mtls_control_plane_flags "$mtls_sentry_address") \
    --healthz-port 8086 --healthz-listen-address 127.0.0.1 \
    --metrics-port 9096 --metrics-listen-address 127.0.0.1 \
    --etcd-data-dir "$run_dir/scheduler/data" --etcd-client-port 4379 \
    --etcd-initial-cluster "dapr-scheduler-server-0=http://127.0.0.1:4380" \
    --log-level warn >"$log_dir/scheduler.log" 2>&1 < /dev/null &
  echo $! > "$run_dir/scheduler.pid"
  wait_until "scheduler at http://127.0.0.1:8086/healthz" "$scheduler_timeout" "$!" http_ok "http://127.0.0.1:8086/healthz" && return
  log "scheduler did not become ready; see $log_dir/scheduler.log"; tail -n 20 "$log_dir/scheduler.log" >&2; exit 1
}

# Services (and their sidecars) not ready yet, into the array `pending`.
pending_services() {
  pending=()
  local s name app_port dapr_port
  for s in "${services[@]}"; do
    IFS=: read -r name app_port dapr_port <<<"$s"
    http_ok "http://127.0.0.1:$dapr_port/v1.0/healthz" && http_ok "http://127.0.0.1:$app_port/readyz" \
      || pending+=("$name")
  done
  [ "${#pending[@]}" -eq 0 ]
}

# Every service answers /readyz and its sidecar /v1.0/healthz.
wait_ready() {
  local pending=() pid
  pid="$(cat "$run_dir/dapr-run.pid")"
  if wait_until "/readyz of ${services[*]%%:*} and /v1.0/healthz of their sidecars" \
    "$ready_timeout" "$pid" pending_services; then
    return 0
  fi
  pending_services || log "not ready: ${pending[*]}"
  log "last lines of $log_dir/stack.log:"; tail -n 40 "$log_dir/stack.log" >&2; return 1
}

up() {
  mkdir -p "$log_dir"
  # Infrastructure that was already running (e.g. started by `make infra` or
  # shared with other work) is left running by `down`.
  if ! { redis-cli -p 6379 ping >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1; }; then
    touch "$run_dir/stack-started-infra"
  fi
  bash scripts/infra.sh up
  bash scripts/install-dapr.sh
  log "building the services (first build on a fresh machine: ~20 min; progress every 20 s)"
  # shellcheck source=scripts/lib/progress.sh
  . scripts/lib/progress.sh
  run_with_progress "cargo build (scripts/build-services.sh)" "$log_dir/cargo-build.log" scripts/build-services.sh
  # dapr.yaml starts .run/bin/<service>; link the fresh builds there, wherever
  # CARGO_TARGET_DIR puts them.
  local target_dir
  target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
  mkdir -p "$run_dir/bin"
  for s in "${services[@]}"; do
    ln -sfn "$target_dir/debug/${s%%:*}" "$run_dir/bin/${s%%:*}"
  done
  # Provider sandboxes (PSP, SMS/push, SMTP catcher) before the services.
  bash sandboxes/run.sh up "$target_dir" || { down; exit 1; }
  # Pluggable components before the sidecars, which discover them at start.
  bash scripts/pluggable.sh up "$target_dir" || { down; exit 1; }
  observability_up || { down; exit 1; }
  if alive "$run_dir/dapr-run.pid" "run -f"; then
    log "the platform is already running (make down to stop it)"
  else
    mtls_up "$run_dir" "$log_dir" "$bin_dir" || { down; exit 1; }
    start_scheduler
    secrets_up "$run_dir"
    # With replicas, replica 1 too runs with its share of the database pools.
    runfile=dapr.yaml
    [ "$REPLICAS" -gt 1 ] && runfile="$(replica_runfile 1)"
    log "starting every service with its sidecar (dapr run -f $runfile)"
    setsid dapr run -f "$runfile" >"$log_dir/stack.log" 2>&1 < /dev/null &
    echo $! > "$run_dir/dapr-run.pid"
  fi
  if ! wait_ready; then down; exit 1; fi
  replicas_up || { down; exit 1; }
  bash scripts/lib/bookings.sh || log "bookings: local client secret not set (see scripts/lib/bookings.sh)"
  gateway_up || { down; exit 1; }
  printf '\nThe platform is up. Logs: %s\n\n' "$log_dir"
  printf '  %-14s %-24s %-26s %s\n' service API sidecar "health"
  for s in "${services[@]}"; do
    IFS=: read -r name app_port dapr_port <<<"$s"
    printf '  %-14s %-24s %-26s %s\n' "$name" "http://127.0.0.1:$app_port" "http://127.0.0.1:$dapr_port" "/healthz /readyz /metrics"
  done
  printf '\n  Redis 127.0.0.1:6379, PostgreSQL 127.0.0.1:5432, Dapr scheduler 127.0.0.1:4506, sentry 127.0.0.1:50001 (mTLS)\n'
  printf '  The sidecar APIs need their token: dapr-api-token from %s\n' "$run_dir/tokens.env"
  printf '  Sandboxes: PSP http://127.0.0.1:8010, SMS/push http://127.0.0.1:8020, SMTP catcher 127.0.0.1:2525 (mail at http://127.0.0.1:8025/api/messages)\n'
  [ "$REPLICAS" -gt 1 ] && printf '  Replicas: %s of every service; replica r listens on the ports above + (r-1)*%s\n' "$REPLICAS" "$REPLICA_PORT_OFFSET"
  observability_endpoints
  printf '  Stop everything with: make down\n'
}

down() {
  local failed=0
  gateway_down || failed=1
  replicas_down || failed=1
  # SIGINT to `dapr run -f` alone: it stops its apps and sidecars and exits
  # within a second. It ignores SIGTERM, and neither after `dapr stop -f` nor
  # with its apps signalled at the same time (SIGINT to the whole group) did
  # it exit, so every `down` used to sit out the 15 s grace before SIGKILL.
  stop_group "$run_dir/dapr-run.pid" "services and sidecars" "run -f" leader-INT || failed=1
  stop_group "$run_dir/scheduler.pid" "scheduler" scheduler || failed=1
  stop_group "$run_dir/sentry.pid" "sentry" sentry || failed=1
  bash scripts/pluggable.sh down || failed=1
  observability_down || failed=1
  bash sandboxes/run.sh down || failed=1
  if [ -f "$run_dir/stack-started-infra" ]; then
    bash scripts/infra.sh down
    rm -f "$run_dir/stack-started-infra"
  fi
  [ "$failed" -eq 0 ] || return 1
  log "everything stopped"
}

status() {
  bash scripts/infra.sh status
  alive "$run_dir/scheduler.pid" scheduler && echo "scheduler: up" || echo "scheduler: down"
  alive "$run_dir/sentry.pid" sentry && echo "sentry: up" || echo "sentry: down"
  bash sandboxes/run.sh status
  bash scripts/pluggable.sh status
  gateway_status
  observability_status
  for s in "${services[@]}"; do
    IFS=: read -r name app_port _ <<<"$s"
    if http_ok "http://127.0.0.1:$app_port/readyz"; then echo "$name: ready"; else echo "$name: not ready"; fi
  done
  replicas_status
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
