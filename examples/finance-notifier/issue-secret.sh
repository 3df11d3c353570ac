#!/usr/bin/env bash
# The operator's step before finance-notifier's first start on the local
# platform: issue auth's client secret for `finance-notifier` (admin API:
# POST /admin/clients/finance-notifier/secret, through the edge gateway) and
# put it in the sidecar's `platform-secrets` file, beside the platform's
# own secrets the shared components need (REDIS_PASSWORD, from
# .run/secrets.json). Elsewhere the secret goes to that environment's
# secret store under the same key, FINANCE_NOTIFIER_CLIENT_SECRET.
#
#   examples/finance-notifier/issue-secret.sh
#
# The admin token: client credentials of `platform-admin` with
# ADMIN_CLIENT_SECRET (default: the local-only bootstrap secret of
# dapr.yaml). Issuing a secret replaces the old one (run.sh reads the file
# at start). The file is mode 600 under .run/ (never committed).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
run_dir="${PLATFORM_RUN_DIR:-$repo/.run}"
gateway="${GATEWAY_URL:-http://127.0.0.1:8000}"
out="${FINANCE_NOTIFIER_SECRETS_FILE:-$run_dir/finance-notifier/secrets.json}"
[ -s "$run_dir/secrets.json" ] || { echo "issue-secret: $run_dir/secrets.json missing: is the platform up (make up)?" >&2; exit 2; }

admin_token="$(curl -fsS --max-time 10 -u "platform-admin:${ADMIN_CLIENT_SECRET:-local-only-admin-secret}" \
  -d grant_type=client_credentials -d scope=auth:admin -d audience=auth "$gateway/auth/oauth2/token" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"
issued="$(curl -fsS --max-time 10 -X POST -H "Authorization: Bearer $admin_token" \
  "$gateway/auth/admin/clients/finance-notifier/secret")"
mkdir -p "$(dirname "$out")"
(
  umask 077
  ISSUED="$issued" python3 - "$run_dir/secrets.json" "$out" <<'PY'
import json, os, sys
secrets = json.load(open(sys.argv[1]))
secrets["FINANCE_NOTIFIER_CLIENT_SECRET"] = json.loads(os.environ["ISSUED"])["client_secret"]
tmp = sys.argv[2] + ".tmp"
with open(tmp, "w") as f:
    json.dump(secrets, f, indent=2)
os.replace(tmp, sys.argv[2])
PY
)
echo "issue-secret: finance-notifier's client secret issued and stored in $out" >&2
