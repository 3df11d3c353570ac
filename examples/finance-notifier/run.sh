#!/usr/bin/env bash
# Runs finance-notifier with its own daprd beside a running platform
# (`make up`), in the foreground, until Ctrl-C or SIGTERM stops both.
#
#   examples/finance-notifier/run.sh
#
# Needs (README.md): the platform up; the sidecar's secrets file
# (FINANCE_NOTIFIER_SECRETS_FILE, default .run/finance-notifier/secrets.json,
# written by issue-secret.sh). Ports (all on loopback; override to run
# beside another copy): FINANCE_NOTIFIER_APP_PORT (8030),
# FINANCE_NOTIFIER_DAPR_HTTP_PORT (3530), FINANCE_NOTIFIER_DAPR_GRPC_PORT
# (4530), FINANCE_NOTIFIER_METRICS_PORT (9130). Logs (JSON lines):
# FINANCE_NOTIFIER_LOG_DIR (.run/logs)/finance-notifier{,-daprd}.log.
#
# The daprd flags are the platform's (dapr.yaml, scripts/lib/mtls.sh):
# mTLS through the local sentry, its Configuration
# dapr-config/local/finance-notifier.yaml, the shared components
# (components/local, loaded when scoped to this app id) and Resiliency.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
run_dir="${PLATFORM_RUN_DIR:-$repo/.run}"
log_dir="${FINANCE_NOTIFIER_LOG_DIR:-$run_dir/logs}"
bin_dir="${DAPR_BIN_DIR:-$HOME/.dapr/bin}"
app_port="${FINANCE_NOTIFIER_APP_PORT:-8030}"
http_port="${FINANCE_NOTIFIER_DAPR_HTTP_PORT:-3530}"
grpc_port="${FINANCE_NOTIFIER_DAPR_GRPC_PORT:-4530}"
metrics_port="${FINANCE_NOTIFIER_METRICS_PORT:-9130}"
secrets_file="${FINANCE_NOTIFIER_SECRETS_FILE:-$run_dir/finance-notifier/secrets.json}"

say() { printf '[finance-notifier] %s\n' "$*" >&2; }
[ -s "$secrets_file" ] || { say "no secrets file $secrets_file: run issue-secret.sh first (README.md)"; exit 2; }
[ -x "$bin_dir/daprd" ] || { say "no daprd in $bin_dir: run make dapr"; exit 2; }
[ -s "$run_dir/name-resolution.db" ] || { say "the platform is not up here ($run_dir): run make up"; exit 2; }
venv="$("$here/install.sh")"
mkdir -p "$log_dir"

# shellcheck source=scripts/lib/mtls.sh
. "$repo/scripts/lib/mtls.sh"
mtls_export_env
mapfile -t mtls_flags < <(mtls_daprd_flags)

# This app's own pair of tokens: the sidecar's API (DAPR_API_TOKEN) and
# sidecar → app (APP_API_TOKEN); new on every start unless the caller
# gives them (the test does, to call the sidecar as the app would).
token() { openssl rand -base64 32 | tr '+/' '-_' | tr -d '='; }
DAPR_API_TOKEN="${FINANCE_NOTIFIER_DAPR_API_TOKEN:-$(token)}"
APP_API_TOKEN="${FINANCE_NOTIFIER_APP_API_TOKEN:-$(token)}"
export DAPR_API_TOKEN APP_API_TOKEN
export REDIS_HOST="${REDIS_HOST:-127.0.0.1:6379}"
export PLATFORM_NAME_RESOLUTION_DB="$run_dir/name-resolution.db"
export PLATFORM_SECRETS_FILE="$secrets_file"

pids=()
stop() {
  trap - EXIT INT TERM
  [ "${#pids[@]}" -eq 0 ] || kill -TERM "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 100); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && break
    sleep 0.1
  done
  [ "${#pids[@]}" -eq 0 ] || kill -KILL "${pids[@]}" 2>/dev/null || true
  say "stopped"
}
trap stop EXIT
trap 'exit 0' INT TERM

(
  cd "$here"
  export PYTHONPATH="$here" FINANCE_NOTIFIER_APP_PORT="$app_port" \
    DAPR_HTTP_PORT="$http_port" DAPR_GRPC_PORT="$grpc_port" DAPR_RUNTIME_HOST=127.0.0.1
  exec "$venv/bin/python" -m finance_notifier
) >>"$log_dir/finance-notifier.log" 2>&1 </dev/null &
pids+=("$!")

"$bin_dir/daprd" --app-id finance-notifier --app-port "$app_port" --app-protocol http \
  --app-channel-address 127.0.0.1 \
  --dapr-listen-addresses 127.0.0.1 --dapr-http-port "$http_port" --dapr-grpc-port "$grpc_port" \
  --dapr-internal-grpc-listen-address 127.0.0.1 \
  --metrics-port "$metrics_port" --metrics-listen-address 127.0.0.1 \
  --config "$repo/dapr-config/local/finance-notifier.yaml" \
  --resources-path "$repo/components/local" \
  --resources-path "$repo/dapr-config/resiliency" \
  --log-level info --log-as-json \
  "${mtls_flags[@]}" >>"$log_dir/finance-notifier-daprd.log" 2>&1 </dev/null &
pids+=("$!")

say "app :$app_port, daprd http :$http_port grpc :$grpc_port; logs $log_dir/finance-notifier{,-daprd}.log"
# Whichever stops first stops the other.
wait -n "${pids[@]}" || true
say "a process exited; stopping the other"
exit 1
