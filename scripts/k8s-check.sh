#!/usr/bin/env bash
# Proves deploy/ against a real Kubernetes API server on this machine
# (`make k8s-check`, part of `make test`). No container runs here, but the API
# server does: its validation, defaulting, CRD schemas and admission are what
# a cluster would apply.
#
#  1. deploy/base/dapr matches components/ and dapr-config/ (k8s-generate --check)
#  2. etcd + kube-apiserver (pinned, built by install-k8s-tools.sh) on loopback,
#     free ports, their own temporary folder: no fixed port, no stack lock
#  3. CRDs from the pinned Go modules: Dapr (tools/dapr), KEDA (tools/keda),
#     Argo Rollouts (pinned below) - taken from the module cache, not copied
#  4. every overlay: `kustomize build` | `kubectl apply --dry-run=server`,
#     strict field validation; the Dapr Helm chart rendered by `helm template`
#     and dry-run the same way; kubeconform on the rendered output with
#     schemas exported from this API server; any error fails the run
#  5. the dev Secrets script dry-run against the same server
# Set K8S_CHECK_KEEP=1 to keep the API server running (prints its kubeconfig).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ARGO_ROLLOUTS_VERSION=v1.10.1 # v1.10.2 requires Go >= 1.26.10

log() { printf '[k8s-check] %s\n' "$*" >&2; }
fail() { printf '[k8s-check] FAILED: %s\n' "$*" >&2; exit 1; }

"$here/scripts/k8s-generate.sh" --check

"$here/scripts/install-k8s-tools.sh" all
eval "$("$here/scripts/install-k8s-tools.sh" print-env)"
KUBECTL="${KUBECTL:-kubectl}"
command -v "$KUBECTL" >/dev/null || fail "kubectl not found (preinstalled on this machine; apt-get install kubectl elsewhere)"

mod_dir() { # <module@version> [wrapper dir]: the module's folder in the Go module cache
  (cd "${2:-$here/tools/kubernetes}" && GOFLAGS=-mod=mod go mod download -json "$1") \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir") or sys.exit("no Dir: %s" % d.get("Error")))'
}
mod_version() { awk -v m="$2" '$1=="require" && $2==m {print $3; exit} $1==m && $2 ~ /^v/ {print $2; exit}' "$1"; }

dapr_version="$(mod_version "$here/tools/dapr/go.mod" github.com/dapr/dapr)"
keda_version="$(mod_version "$here/tools/keda/go.mod" github.com/kedacore/keda/v2)"
log "CRDs from the module cache: dapr $dapr_version, keda $keda_version, argo-rollouts $ARGO_ROLLOUTS_VERSION"
dapr_dir="$(mod_dir "github.com/dapr/dapr@$dapr_version" "$here/tools/dapr")"
keda_dir="$(mod_dir "github.com/kedacore/keda/v2@$keda_version" "$here/tools/keda")"
# Argo Rollouts: the module is only read for its CRDs (manifests/crds), so a
# plain download suffices (its go.mod's Go version matters only for a build).
argo_dir="$(cd "$(mktemp -d)" && GOTOOLCHAIN=local go mod download -json "github.com/argoproj/argo-rollouts@$ARGO_ROLLOUTS_VERSION" \
  | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir") or sys.exit("no Dir: %s" % d.get("Error")))')"

# shellcheck source=scripts/k8s-apiserver.sh
. "$here/scripts/k8s-apiserver.sh"
k8s_apiserver_start k8s-check

log "installing CRDs"
crds=("$dapr_dir"/charts/dapr/crds/*.yaml "$keda_dir"/config/crd/bases/*.yaml "$argo_dir"/manifests/crds/*-crd.yaml)
for f in "${crds[@]}"; do "$KUBECTL" apply --server-side -f "$f" >/dev/null || fail "CRD $f"; done
"$KUBECTL" wait --for condition=established --timeout=60s crd --all >/dev/null
log "$("$KUBECTL" get crd --no-headers | wc -l) CRDs established"

# Namespaces must exist for a namespaced dry-run; they are created for real.
failures=0
dry_run() { # <label> <file>
  # Warnings fail too: Pod Security Admission (`restricted` on the
  # namespaces) only warns for workloads, and a warning is a pod the
  # cluster would refuse to start.
  if "$KUBECTL" apply --dry-run=server --validate=strict -f "$2" >"$work/out" 2>&1 \
     && ! grep -q '^Warning:' "$work/out"; then
    log "$1: $(grep -c . "$work/out") objects accepted by the API server (dry-run)"
  else
    cat "$work/out" >&2; log "$1: REJECTED by the API server"; failures=$((failures + 1))
  fi
}

# overlay_consistent <label> <rendered overlay>: what no schema knows. Every
# accessControl policy names the overlay's namespace (the callers' SPIFFE ids
# carry it; the one-host files say `default`), and the gateway pipelines'
# token issuer is the one auth issues tokens as.
overlay_consistent() {
  if python3 - "$2" >"$work/out" 2>&1 <<'EOF'
import base64, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
ns = {d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"}
errors = []
if len(ns) != 1: errors.append(f"expected one Namespace, found {sorted(ns)}")
for d in docs:
    if d["kind"] == "Configuration":
        for p in (d["spec"].get("accessControl") or {}).get("policies") or []:
            if p.get("namespace") not in ns:
                errors.append(f"Configuration {d['metadata']['name']}: the policy for {p.get('appId')} names namespace {p.get('namespace')!r}, not {sorted(ns)}")
settings = next((d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("platform-settings")), None)
gw = next((d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "gateway-settings"), None)
if not settings or not gw:
    errors.append("the platform-settings ConfigMap or the gateway-settings Secret is missing")
else:
    issuer = base64.b64decode(gw["data"]["issuer"]).decode()
    if issuer != settings["data"]["auth-issuer"]:
        errors.append(f"gateway-settings issuer {issuer!r} != platform-settings auth-issuer {settings['data']['auth-issuer']!r}")
for e in errors: print(e)
sys.exit(1 if errors else 0)
EOF
  then log "$1: accessControl namespaces and the gateway's token issuer agree with the overlay"
  else cat "$work/out" >&2; log "$1: inconsistent"; return 1; fi
}

for overlay in "$here"/deploy/overlays/*/; do
  name="$(basename "$overlay")"
  "$KUSTOMIZE" build "$overlay" > "$work/$name.yaml" || { log "$name: kustomize build failed"; failures=$((failures + 1)); continue; }
  python3 - "$work/$name.yaml" > "$work/$name.ns.yaml" <<'EOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") == "Namespace"]
print(yaml.safe_dump_all(docs))
EOF
  "$KUBECTL" apply -f "$work/$name.ns.yaml" >/dev/null
  dry_run "overlay $name" "$work/$name.yaml"
  overlay_consistent "$name" "$work/$name.yaml" || failures=$((failures + 1))
done

# The gate itself can fail: the dev overlay with one known defect at a time
# must be rejected (a Deployment whose selector does not match its pod
# labels, which schema linters miss; an unknown field in a ScaledObject).
for defect in selector unknown-field; do
  python3 - "$work/dev.yaml" "$defect" > "$work/defect.yaml" <<'EOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
defect = sys.argv[2]
for d in docs:
    if defect == "selector" and d["kind"] == "Deployment":
        d["spec"]["selector"]["matchLabels"] = {"app.kubernetes.io/name": "not-" + d["metadata"]["name"]}
        break
    if defect == "unknown-field" and d["kind"] == "ScaledObject":
        d["spec"]["minReplicas"] = 1
        break
print(yaml.safe_dump_all(docs))
EOF
  if "$KUBECTL" apply --dry-run=server --validate=strict -f "$work/defect.yaml" >"$work/out" 2>&1; then
    cat "$work/out" >&2; log "self-test: the dev overlay with defect '$defect' was ACCEPTED"; failures=$((failures + 1))
  else
    log "self-test: defect '$defect' rejected: $(grep -m1 -iE 'invalid|unknown|error' "$work/out" | cut -c1-160)"
  fi
done

# ... and the consistency check with a policy left at the one-host namespace.
python3 - "$work/dev.yaml" > "$work/defect.yaml" <<'EOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
next(d for d in docs if d["kind"] == "Configuration" and d["spec"].get("accessControl"))["spec"]["accessControl"]["policies"][0]["namespace"] = "default"
print(yaml.safe_dump_all(docs))
EOF
if ! overlay_consistent "self-test" "$work/defect.yaml" 2>/dev/null; then
  log "self-test: a policy naming namespace 'default' rejected"
else
  log "self-test: a policy naming namespace 'default' was ACCEPTED (or not injected)"; failures=$((failures + 1))
fi

# The Dapr control plane, as Helm renders its chart from the pinned module
# (mTLS on, HA), offline.
"$KUBECTL" create namespace dapr-system >/dev/null
"$HELM" template dapr "$dapr_dir/charts/dapr" --namespace dapr-system \
  --set global.ha.enabled=true --set global.mtls.enabled=true > "$work/dapr-chart.yaml" \
  || { log "helm template of the Dapr chart failed"; failures=$((failures + 1)); }
[ -s "$work/dapr-chart.yaml" ] && dry_run "helm template dapr $dapr_version" "$work/dapr-chart.yaml"

# The dev Secrets script, against the same server.
if "$here/scripts/k8s-dev-secrets.sh" lisasports-dev --dry-run=server >"$work/out" 2>&1; then
  log "k8s-dev-secrets.sh: $(grep -c . "$work/out") Secrets accepted (dry-run)"
else
  cat "$work/out" >&2; log "k8s-dev-secrets.sh REJECTED"; failures=$((failures + 1))
fi

# kubeconform, offline: JSON schemas exported from this API server's OpenAPI
# (built-in kinds and the CRDs above), strict (no unknown fields).
mkdir -p "$work/schemas"
"$KUBECTL" get --raw /openapi/v2 > "$work/openapi.json"
python3 "$here/scripts/k8s-openapi-schemas.py" "$work/openapi.json" "$work/schemas"
for overlay in "$here"/deploy/overlays/*/; do
  name="$(basename "$overlay")"
  if "$KUBECONFORM" -strict -summary -schema-location "$work/schemas/{{ .ResourceKind }}-{{ .Group }}-{{ .ResourceAPIVersion }}.json" \
       "$work/$name.yaml" >"$work/out" 2>&1; then
    log "kubeconform $name: $(tail -n1 "$work/out")"
  else
    cat "$work/out" >&2; log "kubeconform $name: FAILED"; failures=$((failures + 1))
  fi
done

[ "$failures" -eq 0 ] || fail "$failures check(s) failed"
log "every overlay passed"
