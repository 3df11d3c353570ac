#!/usr/bin/env bash
# mTLS + accessControl prototype: sentry :18650 with the bundle from gen-certs.sh,
# echo app "auth" :18081 behind daprd auth (HTTP 18601), daprds payments (18602)
# and bookkeeping (18603) without apps, and "rogue" (18604) without mTLS.
#   run.sh up | down | check
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"; B="$HOME/.dapr/bin"; S="${GW:-/tmp/gw}/mtls"
export MTLS_NR_DB="$S/nr.db"
start() { local name="$1"; shift; setsid "$@" >"$S/$name.log" 2>&1 </dev/null & echo $! >"$S/$name.pid"; }
daprd() { # name http-port base-port extra...
  local id="$1" http="$2" base="$3"; shift 3
  start "$id-daprd" env DAPR_TRUST_ANCHORS="$(cat "$S/creds/ca.crt")" "$B/daprd" --app-id "$id" \
    --dapr-http-port "$http" --dapr-grpc-port "$base" --dapr-internal-grpc-port "$((base+1))" \
    --dapr-internal-grpc-listen-address 127.0.0.1 --metrics-port "$((base+2))" --metrics-listen-address 127.0.0.1 \
    --dapr-listen-addresses 127.0.0.1 --sentry-address 127.0.0.1:18650 \
    --control-plane-trust-domain localhost --control-plane-namespace default "$@"
}
up() {
  mkdir -p "$S"
  [ -f "$S/creds/issuer.crt" ] || bash "$here/gen-certs.sh" "$S/creds" localhost
  start sentry "$B/sentry" --config "$here/sentry-config.yaml" --issuer-credentials "$S/creds" \
    --trust-domain localhost --port 18650 --listen-address 127.0.0.1 \
    --healthz-port 18651 --healthz-listen-address 127.0.0.1 --metrics-port 18652 --metrics-listen-address 127.0.0.1
  for _ in $(seq 50); do curl -fs -o /dev/null 127.0.0.1:18651/healthz && break; sleep 0.2; done
  start auth-app python3 "$here/../echo_app.py" 18081 auth
  daprd auth 18601 18611 --app-port 18081 --enable-mtls --config "$here/auth-config.yaml"
  daprd payments 18602 18621 --enable-mtls --config "$here/caller-config.yaml"
  daprd bookkeeping 18603 18631 --enable-mtls --config "$here/caller-config.yaml"
  daprd rogue 18604 18641 --config "$here/caller-config.yaml"
  for p in 18601 18602 18603 18604; do
    for _ in $(seq 100); do curl -fs -o /dev/null "127.0.0.1:$p/v1.0/healthz" && break; sleep 0.2; done
  done
}
check() {
  c() { local out; out=$(curl -s -w "\n%{http_code}" "$2"); printf "%-52s %s | %s\n" "$1" "$(tail -n1 <<<"$out")" "$(head -n1 <<<"$out" | cut -c1-200)"; }
  c "payments -> auth GET /oauth2/jwks (allowed)"      127.0.0.1:18602/v1.0/invoke/auth/method/oauth2/jwks
  c "payments -> auth GET /.well-known/openid-config." "127.0.0.1:18602/v1.0/invoke/auth/method/.well-known/openid-configuration"
  c "payments -> auth GET /admin/clients (denied)"     127.0.0.1:18602/v1.0/invoke/auth/method/admin/clients
  c "bookkeeping -> auth GET /oauth2/jwks (denied)"    127.0.0.1:18603/v1.0/invoke/auth/method/oauth2/jwks
  c "rogue (no mTLS) -> auth GET /oauth2/jwks"         127.0.0.1:18604/v1.0/invoke/auth/method/oauth2/jwks
}
down() { for f in "$S"/*.pid; do [ -f "$f" ] && { kill "$(cat "$f")" 2>/dev/null || true; rm -f "$f"; }; done; }
"${1:-up}"
