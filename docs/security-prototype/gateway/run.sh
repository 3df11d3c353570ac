#!/usr/bin/env bash
# Starts the gateway prototype: JWKS server :18090, echo app "payments" :18080,
# its daprd (HTTP 18502), the gateway daprd (HTTP 18000). State in $GW (/tmp/gw).
#   run.sh up | down
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"; proto="$here/.."
GW="${GW:-/tmp/gw}"; export GW_NR_DB="$GW/nr.db"; B="$HOME/.dapr/bin"
start() { local name="$1"; shift; setsid "$@" >"$GW/$name.log" 2>&1 </dev/null & echo $! >"$GW/$name.pid"; }
up() {
  mkdir -p "$GW"
  [ -f "$GW/keys/jwks.json" ] || python3 "$proto/keys.py" init "$GW/keys"
  (cd "$GW/keys" && start jwks python3 -m http.server 18090 --bind 127.0.0.1)
  start echo python3 "$proto/echo_app.py" 18080 payments
  start payments-daprd "$B/daprd" --app-id payments --app-port 18080 --dapr-http-port 18502 \
    --dapr-grpc-port 18503 --dapr-internal-grpc-port 18504 --metrics-port 18505 \
    --dapr-listen-addresses 127.0.0.1 --config "$here/payments-config.yaml" ${PAYMENTS_FLAGS:-}
  start gateway-daprd "$B/daprd" --app-id gateway --dapr-http-port 18000 \
    --dapr-grpc-port 18011 --dapr-internal-grpc-port 18012 --metrics-port 18013 \
    --dapr-listen-addresses 127.0.0.1 --config "$here/config/gateway.yaml" \
    --resources-path "$here/resources" ${GATEWAY_FLAGS:-}
  for p in 18000 18502; do
    for _ in $(seq 100); do curl -fs -o /dev/null "127.0.0.1:$p/v1.0/healthz" && break; sleep 0.2; done
  done
  echo "up: gateway http://127.0.0.1:18000, payments sidecar http://127.0.0.1:18502, logs $GW/*.log"
}
down() {
  for n in gateway-daprd payments-daprd echo jwks; do
    [ -f "$GW/$n.pid" ] && { kill "$(cat "$GW/$n.pid")" 2>/dev/null || true; rm -f "$GW/$n.pid"; }
  done
}
"${1:-up}"
