#!/usr/bin/env bash
# Measures when a token gateway daprd (started with make up's flags) sees a
# JWKS change (ADR 0025, "Key rotation at the gateway"): keys A and B, JWKS
# {A} at start, {B} after 10 s; tokens of both probed every 5 s; prints each
# change of answers and when the daprd fetched the JWKS. Takes 21 minutes.
# Needs python3 with joserfc (docs/security-prototype/keys.py) and daprd.
#   gateway/measure-jwks-refresh.sh [seconds, 1260]
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
keys_py="$here/docs/security-prototype/keys.py"
R="$(mktemp -d /tmp/jwks-refresh.XXXXXX)"
duration="${1:-1260}"
base=18190
cleanup() { kill "$(cat "$R/daprd.pid" 2>/dev/null)" "$(cat "$R/jwks.pid" 2>/dev/null)" 2>/dev/null; }
trap cleanup EXIT
python3 "$keys_py" init "$R/keys"
(cd "$R/keys" && exec python3 -m http.server "$base" --bind 127.0.0.1 >"$R/jwks.log" 2>&1) & echo $! >"$R/jwks.pid"
for _ in $(seq 50); do curl -fs -o /dev/null "127.0.0.1:$base/jwks.json" && break; sleep 0.2; done
export GATEWAY_ISSUER=http://127.0.0.1:18001 GATEWAY_JWKS_URL="http://127.0.0.1:$base/jwks.json" \
  GATEWAY_AUDIENCE=payments GATEWAY_CLIENT_RPS=1000 GATEWAY_IP_RPS=1000 PLATFORM_NAME_RESOLUTION_DB="$R/nr.db"
mapfile -t flags < <(bash -c 'here="$1"; shift; . "$here/scripts/lib/gateway.sh"; gateway_daprd_flags "$@"' _ "$here" \
  payments $((base + 1)) $((base + 2)) $((base + 3)) $((base + 4)) $((base + 5)))
"${DAPR_BIN_DIR:-$HOME/.dapr/bin}/daprd" "${flags[@]}" >"$R/daprd.log" 2>&1 & echo $! >"$R/daprd.pid"
for _ in $(seq 100); do curl -fs -o /dev/null "127.0.0.1:$((base + 5))/v1.0/healthz" && break; sleep 0.2; done
start=$(date +%s); echo "gateway daprd healthy at $(date -u +%T)"
TA=$(python3 "$keys_py" token "$R/keys" a aud=payments exp=3600)
TB=$(python3 "$keys_py" token "$R/keys" b aud=payments exp=3600)
# 401: bearer refused; anything else passed bearer (no payments app runs: 500).
probe() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" -H 'Dapr-App-Id: payments' \
  "127.0.0.1:$((base + 1))/v1/payments/x"; }
echo "t=0 A=$(probe "$TA") B=$(probe "$TB")"
sleep 10
python3 "$keys_py" jwks "$R/keys" b
echo "t=$(($(date +%s) - start)) $(date -u +%T): the JWKS now holds key B only"
last=""
while [ $(($(date +%s) - start)) -lt "$duration" ]; do
  s="A=$(probe "$TA") B=$(probe "$TB")"
  [ "$s" != "$last" ] && echo "t=$(($(date +%s) - start)) $(date -u +%T) $s" && last="$s"
  sleep 5
done
echo "end t=$(($(date +%s) - start)) $(date -u +%T) $last"
echo "JWKS fetches (the first is this script's readiness check):"
grep "GET /jwks.json" "$R/jwks.log"
