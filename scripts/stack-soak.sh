#!/usr/bin/env bash
# `make up` then `make down`, N times in a row (default 20); stops at the
# first failure and names its run. Proves that start-up and shutdown do not
# depend on luck (a race in a readiness wait shows up within a few runs).
#
#   scripts/stack-soak.sh [N]
#
# Each run's output: .run/logs/soak/run-<i>.log. After every `down`, nothing
# may answer on the services' ports. Refuses to start while a platform is
# already running here (ports are fixed: it may be someone else's).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
runs="${1:-20}"
run_dir="${PLATFORM_RUN_DIR:-$here/.run}"
soak_dir="$run_dir/logs/soak"
# The app ports of dapr.yaml, and the sandboxes' (sandboxes/run.sh).
ports=(8001 8002 8003 8004 8010 8020 8025)

log() { printf '[soak] %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/readiness.sh
. "$here/scripts/lib/readiness.sh"

[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { log "N must be a positive number, not '$runs'"; exit 2; }

# Ports that still answer HTTP (any status), space-separated.
answering() {
  local port open=()
  for port in "${ports[@]}"; do
    curl -sS -o /dev/null --max-time 2 "http://127.0.0.1:$port/" 2>/dev/null && open+=("$port")
  done
  echo "${open[*]}"
}

busy="$(answering)"
if [ -n "$busy" ]; then
  log "something already answers on 127.0.0.1 port(s) $busy (a platform someone else started?); not starting"
  exit 1
fi

mkdir -p "$soak_dir"
# Compile first, so that run 1 times the start-up and not the build.
log "building the services"
scripts/build-services.sh --quiet

durations=()
soak_started="$(now_ms)"
for i in $(seq "$runs"); do
  out="$soak_dir/run-$i.log"
  started="$(now_ms)"
  if ! scripts/stack.sh up >"$out" 2>&1; then
    log "run $i/$runs: make up FAILED after $(($(now_ms) - started)) ms; last lines of $out:"
    tail -n 30 "$out" >&2
    scripts/stack.sh down >>"$out" 2>&1 || true
    exit 1
  fi
  up_ms=$(($(now_ms) - started))
  stopping="$(now_ms)"
  if ! scripts/stack.sh down >>"$out" 2>&1; then
    log "run $i/$runs: make down FAILED after $(($(now_ms) - stopping)) ms; last lines of $out:"
    tail -n 30 "$out" >&2
    exit 1
  fi
  down_ms=$(($(now_ms) - stopping))
  busy="$(answering)"
  if [ -n "$busy" ]; then
    log "run $i/$runs: after make down, port(s) $busy still answer"
    exit 1
  fi
  durations+=("$((up_ms + down_ms)) $up_ms $down_ms")
  log "run $i/$runs: ok, up $((up_ms / 1000)).$(printf '%03d' $((up_ms % 1000))) s, down $((down_ms / 1000)).$(printf '%03d' $((down_ms % 1000))) s"
done

total_ms=$(($(now_ms) - soak_started))
# min / median / max per column (run, up, down), in seconds.
printf '%s\n' "${durations[@]}" | awk -v runs="$runs" -v total="$total_ms" '
  { for (c = 1; c <= 3; c++) v[c, NR] = $c / 1000 }
  function stats(c,   i, j, t, n, a, median) {
    n = NR
    for (i = 1; i <= n; i++) a[i] = v[c, i]
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    median = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    return sprintf("min %.1f s, median %.1f s, max %.1f s", a[1], median, a[n])
  }
  END {
    printf "[soak] %d of %d runs passed in %.1f s\n", NR, runs, total / 1000
    printf "[soak]   per run (up + down): %s\n", stats(1)
    printf "[soak]   make up:             %s\n", stats(2)
    printf "[soak]   make down:           %s\n", stats(3)
  }' >&2
