#!/usr/bin/env bash
# `make bench-tracing`: the cost of tracing, measured in one run against one
# running platform. Alternating phases of the same load (vegeta, as fast as
# BENCH_WORKERS (4) go, create + read payment), three kinds:
#   default: no `traceparent`: payments starts each trace and its sampler
#            keeps it at the shipped default ratio (OTEL_TRACES_SAMPLER_ARG,
#            DEFAULT_SAMPLING_RATIO; ADR 0047), every hop after follows;
#   off:     a "not sampled" traceparent: parent-based sampling drops the
#            trace at every hop, nothing recorded or exported (tracing off
#            for this traffic; context still propagated);
#   all:     a "sampled" traceparent: every hop records and exports (1.0).
# Phases default/off/all twice over cancel drift. Prints throughput and
# p50/p99 of each, and the ratios default/off and all/off.
#
# Uses the running platform, or brings it up (and down) under the stack lock.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
phase="${BENCH_PHASE:-20s}" workers="${BENCH_WORKERS:-4}"
log() { printf '[bench-tracing] %s\n' "$*" >&2; }
if ! curl -sS -o /dev/null --max-time 5 http://127.0.0.1:8002/healthz 2>/dev/null; then  # any answer: running (readyz may say 503 under load)
  if [ -z "${BENCH_UNDER_LOCK:-}" ]; then
    log "the platform is not running: starting it under the stack lock for this run"
    exec flock -o /tmp/lisasports-stack.lock env BENCH_UNDER_LOCK=1 bash -c \
      'scripts/stack.sh up && scripts/bench-tracing.sh; rc=$?; scripts/stack.sh down; exit $rc'
  fi
  log "the platform did not come up"; exit 1
fi
bash scripts/install-observability.sh vegeta
obs_bin="${OBSERVABILITY_BIN_DIR:-$HOME/.cache/lisasports-observability/bin}"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
python3 - "$work" <<'PY'
import base64, json, os, sys, uuid
sys.path.insert(0, "scripts")
import slo_mix as m
out = sys.argv[1]
run = uuid.uuid4().hex[:8]
admin = m.token("platform-admin", m.ADMIN_SECRET, "auth:admin", "auth")
c = m.must(m.call("POST", f"{m.AUTH}/admin/clients", headers={"authorization": f"Bearer {admin}"}, body={
    "client_id": f"bench-{run}", "name": "bench-tracing", "grant_types": ["client_credentials"],
    "allowed_scopes": ["payments:read", "payments:write"], "allowed_audiences": ["payments"]}), "client")
tok = m.token(f"bench-{run}", c["client_secret"], "payments:read payments:write", "payments")
pid = m.must(m.call("POST", f"{m.PAY}/v1/payments", headers={"authorization": f"Bearer {tok}", "Idempotency-Key": f"{run}-seed"},
                    body={"amount": 100, "currency": "EUR", "customer_reference": "cus_bench"}), "payment")["id"]
for phase in ("default1", "off1", "all1", "default2", "off2", "all2"):
    flag = {"off": "00", "all": "01"}.get(phase[:-1])
    with open(os.path.join(out, f"{phase}.jsonl"), "w") as f:
        for i in range(40000):
            extra = {"traceparent": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-{flag}"} if flag else {}
            t = (m.target("POST", f"{m.PAY}/v1/payments", tok, {"amount": 100 + i, "currency": "EUR", "customer_reference": "cus_bench"},
                          {"Idempotency-Key": f"{run}-{phase}-{i}", **extra}) if i % 2 == 0
                 else m.target("GET", f"{m.PAY}/v1/payments/{pid}", tok, None, extra))
            f.write(json.dumps(t) + "\n")
PY
printf 'bench-tracing on %s (%s cores, shared), %s per phase, %s workers, create+read payment\n' "$(hostname)" "$(nproc)" "$phase" "$workers"
for p in default1 off1 all1 default2 off2 all2; do
  "$obs_bin/vegeta" attack -format=json -targets="$work/$p.jsonl" -rate=0 -max-workers="$workers" -workers="$workers" \
    -duration="$phase" -timeout=10s > "$work/$p.bin"
  "$obs_bin/vegeta" report -type=json < "$work/$p.bin" > "$work/$p.json"
done
python3 - "$work" <<'PY'
import json, os, sys
w = sys.argv[1]
r = {p: json.load(open(os.path.join(w, f"{p}.json"))) for p in ("default1", "off1", "all1", "default2", "off2", "all2")}
print(f"{'phase':<9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'success':>8}")
for p, d in r.items():
    print(f"{p:<9} {d['throughput']:8.1f} {d['latencies']['50th']/1e6:8.2f} {d['latencies']['99th']/1e6:8.2f} {d['success']*100:7.1f}%")
def mean(kind, f):
    return (f(r[kind + "1"]) + f(r[kind + "2"])) / 2
tput = lambda d: d["throughput"]
p99 = lambda d: d["latencies"]["99th"] / 1e6
off = mean("off", tput)
spread = max(abs(r[k + "1"]["throughput"] - r[k + "2"]["throughput"]) / max(mean(k, tput), 1e-9) for k in ("default", "off", "all"))
for kind, what in (("default", "shipped default sampling"), ("all", "sampling 1.0")):
    on = mean(kind, tput)
    print(f"throughput {kind}/off = {on/off:.3f} (overhead {100*(1-on/off):.1f} %; {what}); p99 {mean(kind, p99):.1f} ms vs {mean('off', p99):.1f} ms")
print(f"largest phase-to-phase spread of one kind: {100*spread:.1f} % (an overhead smaller than this is not resolved)")
PY
