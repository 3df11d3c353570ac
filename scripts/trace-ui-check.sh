#!/usr/bin/env bash
# The trace backend's UI shows a whole trace (issue 14, ADR 0047): finds the
# latest confirmed payment's trace through Zipkin's API, opens its page in
# headless Chromium (Debian's package), checks that the page as rendered by
# the UI's JavaScript lists spans of payments, bookkeeping and communication,
# and saves a screenshot as .run/reports/trace-ui.png for a person to look at.
# Needs the running platform with at least one confirmed payment traced;
# `make trace-check` runs it after tests/tests/trace_payment.rs.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
zipkin="${ZIPKIN_URL:-http://127.0.0.1:9411}"
log() { printf '[trace-ui-check] %s\n' "$*" >&2; }

if ! command -v chromium >/dev/null; then
  log "installing Debian's chromium (headless browser for the UI check)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

confirm='post /v1/payments/{id}/confirm'
trace_id="$(curl -fsS --get "$zipkin/api/v2/traces" --data-urlencode serviceName=payments \
  --data-urlencode "spanName=$confirm" --data-urlencode limit=1 --data-urlencode lookback=3600000 \
  | python3 -c 'import json,sys; t=json.load(sys.stdin); print(t[0][0]["traceId"] if t else "")')"
[ -n "$trace_id" ] || { log "no trace with a span '$confirm' of payments in the last hour at $zipkin"; exit 1; }
url="$zipkin/zipkin/traces/$trace_id"
log "opening $url"

mkdir -p "$here/.run/reports"
browser=(chromium --headless --no-sandbox --disable-gpu --disable-background-networking
         --disable-dev-shm-usage --no-first-run --hide-scrollbars --window-size=1400,1000
         --virtual-time-budget=10000)
dom="$(timeout 120 "${browser[@]}" --dump-dom "$url" 2>/dev/null)"
missing=()
for who in "payments: $confirm" "bookkeeping:" "communication:"; do
  grep -qF -- "$who" <<<"$dom" || missing+=("$who")
done
grep -qF -- "$trace_id" <<<"$dom" || missing+=("the trace id $trace_id")
timeout 120 "${browser[@]}" --screenshot="$here/.run/reports/trace-ui.png" "$url" >/dev/null 2>&1 || true
if [ "${#missing[@]}" -gt 0 ]; then
  log "the rendered page lacks: ${missing[*]} (screenshot: .run/reports/trace-ui.png)"; exit 1
fi
log "the UI shows trace $trace_id with spans of payments, bookkeeping and communication; screenshot: .run/reports/trace-ui.png"
