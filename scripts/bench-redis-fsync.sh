#!/usr/bin/env bash
# What `appendfsync always` costs against `everysec` (ADR 0030), measured in
# one run on this machine: two private Redis servers (own ports, own data
# directories under a temp dir, never the shared instance), the same XADD
# load (a 1 KB event, like a pub/sub message) against each, alternating,
# ROUNDS times. Prints each round, then the median rate and p50/p99 latency
# per setting and the ratio always/everysec.
#
#   scripts/bench-redis-fsync.sh            (ROUNDS=3 CLIENTS=16 REQUESTS=20000)
set -euo pipefail

rounds="${ROUNDS:-3}"
clients="${CLIENTS:-16}"
requests="${REQUESTS:-20000}"
log() { printf '[bench-redis-fsync] %s\n' "$*" >&2; }
for tool in redis-server redis-benchmark redis-cli python3; do
  command -v "$tool" >/dev/null || { log "$tool missing (make infra installs redis-tools)"; exit 1; }
done

work="$(mktemp -d /tmp/bench-redis-fsync.XXXXXX)"
declare -A port pid
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cleanup() {
  for mode in "${!port[@]}"; do redis-cli -p "${port[$mode]}" shutdown nosave >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

for mode in everysec always; do
  port[$mode]="$(free_port)"
  mkdir -p "$work/$mode"
  redis-server --bind 127.0.0.1 --port "${port[$mode]}" --dir "$work/$mode" --save '' \
    --appendonly yes --appendfsync "$mode" --daemonize yes \
    --logfile "$work/$mode/redis.log" >/dev/null
  for _ in $(seq 1 50); do redis-cli -p "${port[$mode]}" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
  redis-cli -p "${port[$mode]}" ping | grep -q PONG || { log "redis ($mode) did not start"; exit 1; }
  log "redis appendfsync=$mode on 127.0.0.1:${port[$mode]} (data in $work/$mode)"
done

payload="$(head -c 1024 /dev/zero | tr '\0' x)"
log "machine: $(nproc) cores, $(uname -srm); data dir on $(df -P "$work" | awk 'NR==2{print $1}')"
log "load: XADD of a 1 KB field, $clients clients, $requests requests per round, $rounds rounds"

results="$work/results"
for round in $(seq 1 "$rounds"); do
  for mode in everysec always; do
    redis-cli -p "${port[$mode]}" del bench >/dev/null
    line="$(redis-benchmark -p "${port[$mode]}" -c "$clients" -n "$requests" -q \
      XADD bench '*' data "$payload" 2>/dev/null | tr '\r' '\n' | grep 'requests per second' | tail -n 1)"
    rps="$(sed -E 's/.*: ([0-9.]+) requests per second.*/\1/' <<<"$line")"
    p50="$(sed -E 's/.*p50=([0-9.]+) msec.*/\1/' <<<"$line")"
    log "round $round $mode: $rps req/s, p50 $p50 ms"
    echo "$mode $rps $p50" >>"$results"
  done
done

# p99 from one extra run per setting with the latency histogram.
for mode in everysec always; do
  redis-cli -p "${port[$mode]}" del bench >/dev/null
  p99="$(redis-benchmark -p "${port[$mode]}" -c "$clients" -n "$requests" --csv \
    XADD bench '*' data "$payload" 2>/dev/null | tail -n 1 | awk -F'","' '{gsub(/"/,"",$7); print $7}')"
  echo "p99 $mode $p99" >>"$results"
done

python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
out = {}
for mode in ("everysec", "always"):
    rps = [float(r[1]) for r in rows if r[0] == mode]
    p50 = [float(r[2]) for r in rows if r[0] == mode]
    p99 = [r[2] for r in rows if r[0] == "p99" and r[1] == mode]
    out[mode] = statistics.median(rps)
    print(f"appendfsync {mode:8}: median {statistics.median(rps):9.0f} XADD/s, median p50 {statistics.median(p50):.3f} ms, p99 {p99[0] if p99 else '?'} ms")
print(f"ratio always/everysec (throughput): {out['always'] / out['everysec']:.2f}")
PY
