#!/usr/bin/env bash
# Fuzzes every service's API against its OpenAPI document with Schemathesis
# (ADR 0039): `make fuzz` (full) and `make fuzz-smoke` (the short profile in
# `make test`). Runs against the platform `make up` started (fixed ports);
# the make targets start it under the stack lock when none is running.
#
#   scripts/fuzz.sh [smoke|full] [service...]     (default: full, every service)
#
# Per service: one token with every scope of its audience (a client created
# for the run through auth's admin API with the bootstrap admin secret),
# the document as the service serves it (GET /openapi.yaml), then
#   1. negative data only: every generated request is schema-invalid and must
#      be refused (4xx problem+json) — and the service's database must hold
#      exactly the rows it held before (row counts of every table);
#   2. positive and negative data: no 5xx, responses match the documented
#      schemas, status codes and content types, errors are problem+json
#      with a `code` (scripts/fuzz_checks.py), auth is not ignored.
# Reports (JUnit, and the failures as a pytest file) under .run/fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."

profile="${1:-full}"; shift || true
case "$profile" in
  smoke) examples="${FUZZ_EXAMPLES:-8}"; budget="${FUZZ_MAX_TIME:-25}" ;;
  full)  examples="${FUZZ_EXAMPLES:-100}"; budget="${FUZZ_MAX_TIME:-600}" ;;
  *) echo "fuzz: profile must be smoke or full (got '$profile')" >&2; exit 2 ;;
esac
services=("$@")
[ "${#services[@]}" -gt 0 ] || services=(auth payments bookkeeping communication bookings)

log() { printf '[fuzz] %s\n' "$*" >&2; }
st="$(scripts/install-fuzz.sh)"
port_of() { case "$1" in auth) echo 8001;; payments) echo 8002;; bookkeeping) echo 8003;; communication) echo 8004;; bookings) echo 8005;;
  *) echo "fuzz: unknown service '$1'" >&2; exit 2;; esac; }
for s in "${services[@]}"; do
  curl -fsS -o /dev/null "http://127.0.0.1:$(port_of "$s")/readyz" \
    || { log "$s is not ready on :$(port_of "$s"): start the platform first (make up)"; exit 1; }
done

out=".run/fuzz/$profile"; rm -rf "$out"; mkdir -p "$out"
run="$(date +%s)-$$"

# A client of this run with every service scope; its tokens per audience.
tokens="$out/tokens.json"
python3 - "$tokens" "$run" <<'PY'
import base64, json, sys, urllib.request
out, run = sys.argv[1], sys.argv[2]
AUTH = "http://127.0.0.1:8001"
ADMIN_SECRET = "local-only-admin-secret"   # make up's bootstrap admin (scripts/slo_mix.py)
def call(method, url, body=None, form=None, bearer=None, basic=None):
    headers = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode(); headers["content-type"] = "application/json"
    if form is not None:
        data = urllib.parse.urlencode(form).encode(); headers["content-type"] = "application/x-www-form-urlencoded"
    if bearer: headers["authorization"] = f"Bearer {bearer}"
    if basic: headers["authorization"] = "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)
import urllib.parse
def token(client, secret, scopes, audience):
    return call("POST", f"{AUTH}/oauth2/token", basic=(client, secret), form={
        "grant_type": "client_credentials", "scope": " ".join(scopes), "audience": audience})["access_token"]
scopes = {s: [f"{s}:read", f"{s}:write", f"{s}:admin"] for s in ("payments", "bookkeeping", "communication", "bookings")}
admin = token("platform-admin", ADMIN_SECRET, ["auth:admin"], "auth")
client = f"fuzz-{run}"
created = call("POST", f"{AUTH}/admin/clients", bearer=admin, body={
    "client_id": client, "name": "make fuzz", "grant_types": ["client_credentials"],
    "allowed_scopes": sum(scopes.values(), []), "allowed_audiences": list(scopes)})
result = {s: token(client, created["client_secret"], sc, s) for s, sc in scopes.items()}
result["auth"] = admin
json.dump(result, open(out, "w"))
PY

databases() { runuser -u postgres -- psql -XAtq -d "$1" -c \
  "SELECT format('SELECT %L || '' '' || count(*) FROM %I.%I;', schemaname || '.' || relname, schemaname, relname)
     FROM pg_stat_user_tables ORDER BY 1" | runuser -u postgres -- psql -XAtq -d "$1"; }
# Tables whose rows record answers, not changes: payments keeps the answer to
# a request sent with an Idempotency-Key, refusals included (ADR 0031), in
# its Dapr state store table, so that a retry gets the same refusal.
ignored_tables='^public\.payments_kv '
snapshot() { # service file: row counts of every table of the service's database (named after it)
  { databases "$1" 2>/dev/null || :; } | grep -Ev "$ignored_tables" > "$2" || :
}

export PYTHONPATH="$PWD/scripts${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=fuzz_checks
checks="not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection,ignored_auth,problem_json_errors"
failed=()
per_service=$(( budget / ${#services[@]} )); [ "$per_service" -ge 5 ] || per_service=5
for s in "${services[@]}"; do
  port="$(port_of "$s")"; base="http://127.0.0.1:$port"
  tok="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$tokens" "$s")"
  common=(--url "$base" -H "Authorization: Bearer $tok" --checks "$checks"
          --max-examples "$examples" --seed 16 --request-timeout 20 --phases examples,coverage,fuzzing
          --suppress-health-check all --warnings off)
  log "$s: negative data only (${examples} examples per operation); the database must not change"
  snapshot "$s" "$out/$s.before"
  set +e
  "$st" run "$base/openapi.yaml" "${common[@]}" --mode negative --max-time "$per_service" \
    --report junit,har --report-junit-path "$out/$s-negative.xml" --report-har-path "$out/$s-negative.har" \
    2>&1 | tee "$out/$s-negative.log"
  neg=${PIPESTATUS[0]}
  set -e
  snapshot "$s" "$out/$s.after"
  if ! diff -u "$out/$s.before" "$out/$s.after" > "$out/$s.db.diff"; then
    # Negative mode cannot always make a request invalid (a Content-Type on
    # an operation without a body, a property the schema allows): such a
    # request may be accepted, and what it changed is no finding. So a
    # change fails the run when no write of the negative run was accepted;
    # otherwise the accepted writes are listed with the change, for a person.
    accepted="$(python3 - "$out/$s-negative.har" <<'PY'
import json, sys
for e in json.load(open(sys.argv[1]))["log"]["entries"]:
    r = e["request"]
    if r["method"] not in ("GET", "HEAD", "OPTIONS", "TRACE") and 200 <= e["response"]["status"] < 300:
        print(f'  {e["response"]["status"]} {r["method"]} {r["url"]}')
PY
)"
    if [ -z "$accepted" ]; then
      log "$s: refused requests changed the database:"; cat "$out/$s.db.diff" >&2
      failed+=("$s: invalid input changed the database")
    else
      log "$s: the database changed, and the negative run had writes accepted as valid (not a finding; see $out/$s.db.diff):"
      printf '%s\n' "$accepted" >&2
    fi
  fi
  [ "$neg" -eq 0 ] || failed+=("$s: negative run failed ($out/$s-negative.log)")
  log "$s: positive and negative data"
  set +e
  "$st" run "$base/openapi.yaml" "${common[@]}" --mode all --max-time "$per_service" \
    --report junit --report-junit-path "$out/$s.xml" 2>&1 | tee "$out/$s.log"
  all=${PIPESTATUS[0]}
  set -e
  [ "$all" -eq 0 ] || failed+=("$s: run failed ($out/$s.log)")
done

if [ "${#failed[@]}" -gt 0 ]; then
  log "FAILED ($profile):"; printf '  %s\n' "${failed[@]}" >&2; exit 1
fi
log "every service honours its contract ($profile profile, ${examples} examples per operation; reports in $out)"
