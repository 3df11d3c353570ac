#!/usr/bin/env bash
# The real KEDA operator (tools/keda, built from the Go module proxy) against
# the local kube-apiserver and a real Redis (`make k8s-keda-check`):
#   - the dev overlay's bookkeeping Deployment, ScaledObject and
#     TriggerAuthentication are applied (for real) to the API server;
#   - with no lag on consumer group `bookkeeping`, KEDA scales the Deployment
#     to 0 after the cooldown;
#   - entries appended to the `payments` stream (lag) make KEDA activate it
#     (0 -> 1) and report the metric (keda_scaler_metrics_value);
#   - once the group has read and acknowledged them, it goes back to 0;
#   - bookings' ScaledObject (minimum 1, never zero) reads its own group's
#     lag on `payments` and `bookings`: KEDA reports both metrics with the
#     backlog of group `bookings`, independent of bookkeeping's reads.
#     (Above one replica is the HPA controller's work: kube-controller-manager
#     does not run here, so 1 -> N is not observed.)
# No pod runs (there is no kubelet): the proof is the Deployment's
# spec.replicas, which is what KEDA writes. Redis: an instance of its own on a
# free port (the shared one is never touched), password-protected like prod.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '[k8s-keda-check] %s\n' "$*" >&2; }
fail() { printf '[k8s-keda-check] FAILED: %s\n' "$*" >&2; exit 1; }

"$here/scripts/install-k8s-tools.sh" etcd
"$here/scripts/install-k8s-tools.sh" cli
"$here/scripts/install-k8s-tools.sh" apiserver
"$here/scripts/install-k8s-tools.sh" keda
eval "$("$here/scripts/install-k8s-tools.sh" print-env)"
KUBECTL="${KUBECTL:-kubectl}"
command -v redis-server >/dev/null || fail "redis-server not installed (make infra installs it)"

# shellcheck source=scripts/k8s-apiserver.sh
. "$here/scripts/k8s-apiserver.sh"
k8s_apiserver_start k8s-keda-check
k="$KUBECTL"

keda_version="$(awk '$1=="github.com/kedacore/keda/v2" && $2 ~ /^v/ {print $2; exit} $1=="require" && $2=="github.com/kedacore/keda/v2" {print $3; exit}' "$here/tools/keda/go.mod")"
keda_dir="$(cd "$here/tools/keda" && go mod download -json "github.com/kedacore/keda/v2@$keda_version" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
for f in "$keda_dir"/config/crd/bases/*.yaml; do "$k" apply --server-side -f "$f" >/dev/null; done
"$k" wait --for condition=established --timeout=60s crd --all >/dev/null

# Redis of its own.
redis_port="$(free_port)"
redis_password="$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --requirepass "$redis_password" --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
rc() { REDISCLI_AUTH="$redis_password" redis-cli -p "$redis_port" "$@"; }
for _ in $(seq 50); do rc ping 2>/dev/null | grep -q PONG && break; sleep 0.2; done
rc ping | grep -q PONG || fail "redis did not start"
# What Dapr's pub/sub creates on first subscription: the stream and the
# app id's consumer group.
rc XGROUP CREATE payments bookkeeping '$' MKSTREAM >/dev/null
rc XGROUP CREATE bookkeeping.statements bookkeeping '$' MKSTREAM >/dev/null
rc XGROUP CREATE payments bookings '$' MKSTREAM >/dev/null
rc XGROUP CREATE bookings bookings '$' MKSTREAM >/dev/null

# The dev overlay's objects for bookkeeping, as rendered (only the address of
# this Redis goes into the Secret the TriggerAuthentication reads).
ns=lisasports-dev
"$KUSTOMIZE" build "$here/deploy/overlays/dev" > "$work/dev.yaml"
python3 - "$work/dev.yaml" > "$work/bookkeeping.yaml" <<'EOF'
import sys, yaml
keep = {("Namespace", "lisasports-dev"), ("Deployment", "bookkeeping"), ("ScaledObject", "bookkeeping"),
        ("TriggerAuthentication", "platform-redis"), ("ServiceAccount", "bookkeeping"),
        ("Deployment", "bookings"), ("ScaledObject", "bookings"), ("ServiceAccount", "bookings")}
# KEDA also resolves the Deployment's environment (ConfigMaps, Secrets), as
# the cluster would have them: the overlay's generated ConfigMaps come along.
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and ((d["kind"], d["metadata"]["name"]) in keep
        or (d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("platform-settings")))]
if len(docs) != len(keep) + 1:
    sys.exit("dev overlay lacks one of %s" % sorted(keep))
print(yaml.safe_dump_all(docs))
EOF
"$k" apply -f "$work/bookkeeping.yaml" >/dev/null
"$k" -n "$ns" create secret generic platform-stores \
  --from-literal=redis-host="127.0.0.1:$redis_port" --from-literal=redis-password="$redis_password" \
  --from-literal=postgres-host=127.0.0.1 >/dev/null
"$k" -n "$ns" create secret generic bookkeeping-secrets \
  --from-literal=database-password="$(python3 -c 'import secrets; print(secrets.token_hex(12))')" >/dev/null
"$k" -n "$ns" create secret generic bookings-secrets \
  --from-literal=database-password="$(python3 -c 'import secrets; print(secrets.token_hex(12))')" \
  --from-literal=payments-client-secret="$(python3 -c 'import secrets; print(secrets.token_hex(12))')" >/dev/null
cooldown="$("$k" -n "$ns" get scaledobject bookkeeping -o jsonpath='{.spec.cooldownPeriod}')"
min="$("$k" -n "$ns" get scaledobject bookkeeping -o jsonpath='{.spec.minReplicaCount}')"
[ "$min" = 0 ] || fail "dev ScaledObject bookkeeping has minReplicaCount $min, this check needs 0"

# KEDA's gRPC metrics service wants a certificate; cert rotation (which would
# patch webhooks and APIServices of a full install) is off.
mkdir -p "$work/certs-keda"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=keda-operator" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$work/certs-keda/tls.key" -out "$work/certs-keda/tls.crt" 2>/dev/null
cp "$work/certs-keda/tls.crt" "$work/certs-keda/ca.crt"
"$k" create namespace keda >/dev/null
metrics_port="$(free_port)"
log "starting keda-operator $keda_version (metrics on 127.0.0.1:$metrics_port)"
KEDA_CLUSTER_OBJECT_NAMESPACE=keda POD_NAMESPACE=keda WATCH_NAMESPACE="" \
  "$KEDA_OPERATOR" --leader-elect=false --cert-dir "$work/certs-keda" \
  --metrics-bind-address "127.0.0.1:$metrics_port" \
  --health-probe-bind-address "127.0.0.1:$(free_port)" \
  --metrics-service-bind-address "127.0.0.1:$(free_port)" \
  --enable-cert-rotation=false --enable-webhook-patching=false --enable-apiservice-patching=false \
  --zap-log-level=info >"$work/keda.log" 2>&1 &
pids+=($!)
keda_pid=$!

replicas_of() { "$k" -n "$ns" get deployment "$1" -o jsonpath='{.spec.replicas}'; }
replicas() { replicas_of bookkeeping; }
scaler_metric() { # <scaledObject> <stream>: the value KEDA last reported
  curl -fsS "http://127.0.0.1:$metrics_port/metrics" | grep '^keda_scaler_metrics_value' \
    | grep "scaledObject=\"$1\"" | grep "redis-streams-$2\"" | awk '{print $NF}' | head -n1 || true
}
wait_replicas() { # <want> <timeout s> <what>
  local start; start=$(date +%s)
  while [ "$(replicas)" != "$1" ]; do
    kill -0 "$keda_pid" 2>/dev/null || { tail -n 40 "$work/keda.log" >&2; fail "keda-operator exited"; }
    if [ $(( $(date +%s) - start )) -ge "$2" ]; then
      tail -n 40 "$work/keda.log" >&2
      "$k" -n "$ns" get scaledobject bookkeeping -o yaml >&2
      fail "$3: replicas still $(replicas) after $2 s (want $1)"
    fi
    log "waiting: $3 (replicas $(replicas), want $1, $(( $(date +%s) - start ))s)"
    sleep 10
  done
  log "$3: replicas $1 after $(( $(date +%s) - start ))s"
}

log "phase 1: no lag on group bookkeeping -> 0 after the cooldown (${cooldown}s)"
wait_replicas 0 $(( cooldown + 180 )) "idle"
"$k" -n "$ns" get scaledobject bookkeeping -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -q True \
  || fail "ScaledObject not Ready"

log "phase 2: 50 entries on stream payments, unread by group bookkeeping"
for i in $(seq 50); do rc XADD payments '*' data "{\"n\":$i}" >/dev/null; done
wait_replicas 1 120 "lag 50 activates"
metric="$(curl -fsS "http://127.0.0.1:$metrics_port/metrics" | grep '^keda_scaler_metrics_value' | grep 'scaledObject="bookkeeping"' | grep 'payments' || true)"
[ -n "$metric" ] || fail "keda_scaler_metrics_value for the payments stream not reported"
log "KEDA reports: $metric"
echo "$metric" | awk '{ if ($NF + 0 < 50) exit 1 }' || fail "reported lag below the 50 entries appended"

log "phase 2b: bookings' ScaledObject reads group bookings' own backlog"
for i in $(seq 30); do rc XADD bookings '*' data "{\"n\":$i}" >/dev/null; done
start=$(date +%s)
until [ -n "$(scaler_metric bookings payments)" ] && [ -n "$(scaler_metric bookings bookings)" ] \
      && awk -v a="$(scaler_metric bookings payments)" -v b="$(scaler_metric bookings bookings)" 'BEGIN { exit !(a >= 50 && b >= 30) }'; do
  [ $(( $(date +%s) - start )) -lt 120 ] || { curl -fsS "http://127.0.0.1:$metrics_port/metrics" | grep keda_scaler_metrics_value >&2; \
    "$k" -n "$ns" get scaledobject bookings -o yaml >&2; fail "bookings' lag (50 on payments, 30 on bookings) not reported within 120 s"; }
  sleep 5
done
log "KEDA reports for bookings: payments $(scaler_metric bookings payments), bookings $(scaler_metric bookings bookings)"
[ "$(replicas_of bookings)" -ge 1 ] || fail "bookings scaled below its minimum of 1"

log "phase 3: group bookkeeping reads and acknowledges everything -> back to 0"
rc XREADGROUP GROUP bookkeeping consumer-1 COUNT 1000 STREAMS payments '>' > "$work/read.txt"
ids="$(grep -E '^[0-9]+-[0-9]+$' "$work/read.txt" || true)"
[ -n "$ids" ] || ids="$(rc XRANGE payments - + | grep -E '^[0-9]+-[0-9]+$')"
# shellcheck disable=SC2086
rc XACK payments bookkeeping $ids >/dev/null
wait_replicas 0 $(( cooldown + 180 )) "no lag again"
# bookkeeping's reads are its own group's: bookings' backlog on payments stays.
b="$(scaler_metric bookings payments)"
awk -v a="$b" 'BEGIN { exit !(a >= 50) }' || fail "bookings' lag on payments is $b after bookkeeping read the stream (groups must be independent)"
log "bookings' lag on payments still $b after bookkeeping acknowledged everything; bookings at $(replicas_of bookings) replica(s) (minimum 1)"
log "KEDA $keda_version scaled bookkeeping 1 -> 0 -> 1 -> 0 on its consumer group's lag and read bookings' own group's lag"
