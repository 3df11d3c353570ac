#!/usr/bin/env bash
# Secrets of the local platform (issue #11, docs/security.md), sourced by
# scripts/stack.sh:
#
# * RUN_DIR/secrets.json: the file read by the `platform-secrets` Dapr
#   secret store (components/local/secretstore.yaml, PLATFORM_SECRETS_FILE);
#   components take their passwords from it with `secretKeyRef`. Local
#   values: the shared Redis has no password (REDIS_PASSWORD if it has one),
#   payments' database role is keyed like its name (PAYMENTS_DB_PASSWORD
#   overrides; scripts/sql/service-databases.sql).
# * RUN_DIR/tokens.env: DAPR_API_TOKEN (the sidecars' API) and
#   APP_API_TOKEN (sidecar → app), random for each `make up`, exported so
#   that `dapr run -f` hands them to every sidecar and every app (the CLI
#   gives a run file's `env:` to the apps only, ADR 0025). One pair for the
#   whole local platform: per-app tokens need one daprd started per app
#   (Compose and Kubernetes do that).
# Both files are mode 600 and never committed (.run/ is ignored).
set -euo pipefail

secrets_log() { printf '[secrets] %s\n' "$*" >&2; }

# secrets_up RUN_DIR [keep]: writes both files (with `keep`, an existing
# tokens file is reused: the platform is already running with it) and
# exports PLATFORM_SECRETS_FILE, DAPR_API_TOKEN and APP_API_TOKEN.
secrets_up() {
  local run_dir="$1" keep="${2:-}"
  mkdir -p "$run_dir"
  (
    umask 077
    REDIS_PASSWORD="${REDIS_PASSWORD:-}" PAYMENTS_DB_PASSWORD="${PAYMENTS_DB_PASSWORD:-payments}" python3 - "$run_dir/secrets.json" <<'PY'
import json, os, sys
secrets = {
    "REDIS_PASSWORD": os.environ["REDIS_PASSWORD"],
    "PAYMENTS_STATE_PASSWORD": os.environ["PAYMENTS_DB_PASSWORD"],
}
tmp = sys.argv[1] + ".tmp"
with open(tmp, "w") as f:
    json.dump(secrets, f, indent=2)
os.replace(tmp, sys.argv[1])
PY
    if [ "$keep" != keep ] || [ ! -s "$run_dir/tokens.env" ]; then
      secrets_log "new sidecar API and app tokens in $run_dir/tokens.env"
      printf 'DAPR_API_TOKEN=%s\nAPP_API_TOKEN=%s\n' \
        "$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=')" \
        "$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=')" > "$run_dir/tokens.env.tmp"
      mv -f "$run_dir/tokens.env.tmp" "$run_dir/tokens.env"
    fi
  )
  export PLATFORM_SECRETS_FILE="$run_dir/secrets.json"
  set -a
  # shellcheck disable=SC1091
  . "$run_dir/tokens.env"
  set +a
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    up) secrets_up "${2:?RUN_DIR}" "${3:-}"; echo "$PLATFORM_SECRETS_FILE" ;;
    *) echo "usage: $0 up RUN_DIR [keep]" >&2; exit 2 ;;
  esac
fi
