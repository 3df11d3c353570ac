#!/usr/bin/env bash
# Creates the Secrets the dev overlay (deploy/overlays/dev) expects, with
# fresh random values: nothing secret is in git, and no well-known
# development value reaches a cluster. Idempotent: existing Secrets are kept
# (delete one to rotate it).
#
# Usage: scripts/k8s-dev-secrets.sh [namespace] [extra `kubectl apply` flags]
#   e.g. scripts/k8s-dev-secrets.sh lisasports-dev
#        scripts/k8s-dev-secrets.sh lisasports-dev --dry-run=server   (make k8s-check)
set -euo pipefail

ns="${1:-lisasports-dev}"
shift || true
KUBECTL="${KUBECTL:-kubectl}"

rand() { python3 -c 'import secrets,sys; print(secrets.token_urlsafe(int(sys.argv[1])))' "${1:-24}"; }
key32() { python3 -c 'import secrets,base64; print(base64.b64encode(secrets.token_bytes(32)).decode())'; }

secret() { # <name> <key=value>...: applied unless it already exists
  local name="$1"; shift
  if "$KUBECTL" -n "$ns" get secret "$name" >/dev/null 2>&1; then
    echo "secret/$name kept"; return 0
  fi
  local args=()
  for kv in "$@"; do args+=(--from-literal="$kv"); done
  "$KUBECTL" -n "$ns" create secret generic "$name" "${args[@]}" --dry-run=client -o yaml \
    | "$KUBECTL" -n "$ns" apply "${apply_flags[@]}" -f -
}
apply_flags=("$@")

secret platform-stores redis-host=redis:6379 "redis-password=$(rand)" \
  postgres-host=postgres "postgres-admin-password=$(rand)"
for svc in auth payments bookkeeping communication bookings; do
  case "$svc" in
    auth) secret auth-secrets "database-password=$(rand)" "keys-encryption-key=$(key32)" \
            "bootstrap-admin-secret=$(rand)" ;;
    payments) secret payments-secrets "database-password=$(rand)" "webhook-secret=whsec_$(rand)" ;;
    communication) secret communication-secrets "database-password=$(rand)" "receipt-secret=$(rand)" ;;
    # payments-client-secret: bookings' client secret at auth. A fresh value
    # here; auth learns it when the operator issues it (README "Deploy to
    # Kubernetes": POST /auth/admin/clients/bookings/secret, then store the
    # answer in this key and restart bookings).
    bookings) secret bookings-secrets "database-password=$(rand)" "payments-client-secret=$(rand)" ;;
    *) secret "$svc-secrets" "database-password=$(rand)" ;;
  esac
  # Zero trust (s11): the sidecar<->app tokens, one pair per app.
  secret "$svc-dapr-app-token" "token=$(rand 32)"
  secret "$svc-dapr-api-token" "token=$(rand 32)"
done
# The dev cluster's providers are the sandboxes (not deployed by the dev
# overlay yet, see docs/releases.md); prod's come from the vault.
secret communication-providers smtp-host=smtp-catcher smtp-port=2525 \
  sms-primary-url=http://notify-sandbox:8020/sms-primary \
  sms-secondary-url=http://notify-sandbox:8020/sms-secondary \
  push-url=http://notify-sandbox:8020/push
