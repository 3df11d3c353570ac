#!/usr/bin/env bash
# Tokens, pub/sub scoping and secrets prototype. Redis :16399 (password from
# secrets.json), echo apps payments :18083 and auth :18082 (ECHO_LOG=1), their
# daprds (HTTP 18702 / 18701) with APP_API_TOKEN and DAPR_API_TOKEN set.
#   run.sh up | down
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"; B="$HOME/.dapr/bin"; S="${GW:-/tmp/gw}/tps"
export PROTO_NR_DB="$S/nr.db" PROTO_SECRETS_FILE="$here/secrets.json" PROTO_SECRET_SMTP_PASSWORD=from-env ECHO_LOG=1
start() { local name="$1"; shift; setsid "$@" >"$S/$name.log" 2>&1 </dev/null & echo $! >"$S/$name.pid"; }
up() {
  mkdir -p "$S"
  start redis redis-server --port 16399 --bind 127.0.0.1 --save "" --appendonly no \
    --requirepass "$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["redis"]["password"])' "$here/secrets.json")"
  start payments-app python3 "$here/../echo_app.py" 18083 payments
  start auth-app python3 "$here/../echo_app.py" 18082 auth
  local id http base port
  for spec in payments:18702:18711:18083 auth:18701:18721:18082; do
    IFS=: read -r id http base port <<<"$spec"
    start "$id-daprd" env APP_API_TOKEN="app-token-$id" DAPR_API_TOKEN="api-token-$id" \
      "$B/daprd" --app-id "$id" --app-port "$port" --dapr-http-port "$http" --dapr-grpc-port "$base" \
      --dapr-internal-grpc-port "$((base+1))" --dapr-internal-grpc-listen-address 127.0.0.1 \
      --metrics-port "$((base+2))" --metrics-listen-address 127.0.0.1 --dapr-listen-addresses 127.0.0.1 \
      --config "$here/config.yaml" --resources-path "$here/resources"
  done
  for p in 18701 18702; do for _ in $(seq 100); do curl -fs -o /dev/null "127.0.0.1:$p/v1.0/healthz" && break; sleep 0.2; done; done
}
down() { for f in "$S"/*.pid; do [ -f "$f" ] && { kill "$(cat "$f")" 2>/dev/null || true; rm -f "$f"; }; done; }
"${1:-up}"
