#!/usr/bin/env bash
# `make slo`: a load run of a realistic mix against the running platform with
# vegeta, then every SLO's SLI read back from Prometheus and printed as
# objective / measured / error budget consumed / pass-fail, and written with
# the latency histograms to .run/reports/slo-<time>.html.
#
#   scripts/slo-run.sh [rate/s] [duration]     (defaults 20 and 60s)
#
# The platform must be up (`make up`); if nothing answers on payments' port,
# the script brings it up itself under the machine-wide stack lock and stops
# it afterwards. The entrance: the gateway on :8000 when it answers, else
# each service directly (the mix's targets name the service's own port).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
rate="${1:-20}" duration="${2:-60s}"
log() { printf '[slo] %s\n' "$*" >&2; }

if ! curl -sS -o /dev/null --max-time 5 http://127.0.0.1:8002/healthz 2>/dev/null; then  # any answer: running (readyz may say 503 under load)
  if [ -z "${SLO_UNDER_LOCK:-}" ]; then
    log "the platform is not running: starting it under the stack lock for this run"
    exec flock -o /tmp/lisasports-stack.lock env SLO_UNDER_LOCK=1 bash -c \
      'scripts/stack.sh up && scripts/slo-run.sh "$0" "$1"; rc=$?; scripts/stack.sh down; exit $rc' "$rate" "$duration"
  fi
  log "the platform did not come up"; exit 1
fi
bash scripts/install-observability.sh vegeta prometheus
obs_bin="${OBSERVABILITY_BIN_DIR:-$HOME/.cache/lisasports-observability/bin}"
run_dir="${PLATFORM_RUN_DIR:-$here/.run}"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
work="$run_dir/slo/$stamp"
mkdir -p "$work" "$run_dir/reports"

entrance=direct
if curl -s -o /dev/null --max-time 2 http://127.0.0.1:8000/ 2>/dev/null; then entrance=gateway; fi
log "preparing the mix (rate ${rate}/s for $duration, entrance: $entrance)"
python3 scripts/slo_mix.py prepare "$work" "$rate" "$duration" "$entrance"

log "attacking with vegeta $(cat "$obs_bin/vegeta.version" | cut -d' ' -f1)"
start_s=$(date +%s)
"$obs_bin/vegeta" attack -format=json -targets="$work/targets.jsonl" -rate="$rate/s" \
  -duration="$duration" -timeout=10s -workers=8 -max-workers=64 > "$work/results.bin"
end_s=$(date +%s)
"$obs_bin/vegeta" report < "$work/results.bin" | tee "$work/vegeta.txt"
"$obs_bin/vegeta" report -type='hist[0,5ms,10ms,25ms,50ms,100ms,250ms,500ms,1s,2.5s]' < "$work/results.bin" > "$work/hist.txt"
"$obs_bin/vegeta" plot -title "make slo $stamp" < "$work/results.bin" > "$run_dir/reports/slo-$stamp-latency.html"
# Events still in flight (bookings, sends) and two scrapes.
sleep 20
python3 scripts/slo_mix.py report "$work" "$start_s" "$(date +%s)" "$run_dir/reports/slo-$stamp.html" "$rate" "$duration" "$entrance" "$end_s"
