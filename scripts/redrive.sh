#!/usr/bin/env bash
# make redrive SERVICE=bookkeeping|communication [ID=<letter id>]
# Re-drives parked dead letters through the service's operator API
# (docs/adr/0029): one letter with ID, else every parked letter; lists what
# is still parked afterwards.
#
# The token: TOKEN (an access token with <service>:admin), or one fetched
# from auth with the client credentials CLIENT_ID (default `operations`,
# seeded by auth's migrations) and CLIENT_SECRET (issued by an administrator:
# POST /admin/clients/operations/secret). Addresses: the local stack's
# (AUTH_URL, and SERVICE_URL for the service), overridable.
set -euo pipefail

service="${SERVICE:-}"
case "$service" in
  bookkeeping) default_url=http://127.0.0.1:8003 ;;
  communication) default_url=http://127.0.0.1:8004 ;;
  *) echo "redrive: SERVICE must be bookkeeping or communication (got '${service}')" >&2; exit 2 ;;
esac
url="${SERVICE_URL:-$default_url}"
id="${ID:-}"
if [ -n "$id" ] && ! [[ "$id" =~ ^[1-9][0-9]*$ ]]; then
  echo "redrive: ID must be a letter id (a positive integer), got '$id'" >&2; exit 2
fi

token="${TOKEN:-}"
if [ -z "$token" ]; then
  if [ -z "${CLIENT_SECRET:-}" ]; then
    echo "redrive: set TOKEN, or CLIENT_SECRET (with CLIENT_ID, default 'operations')" >&2; exit 2
  fi
  echo "redrive: fetching a token for ${service}:admin from ${AUTH_URL:-http://127.0.0.1:8001}"
  token=$(curl -fsS -u "${CLIENT_ID:-operations}:${CLIENT_SECRET}" \
      -d grant_type=client_credentials -d "scope=${service}:admin" -d "audience=${service}" \
      "${AUTH_URL:-http://127.0.0.1:8001}/oauth2/token" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
fi

call() { # method path
  local out status
  out=$(mktemp)
  status=$(curl -sS -o "$out" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $token" "$url$2")
  cat "$out"; echo; rm -f "$out"
  case "$status" in 2*) return 0 ;; *) echo "redrive: $1 $2 answered $status" >&2; return 1 ;; esac
}

if [ -n "$id" ]; then
  echo "redrive: re-driving letter $id of $service"
  call POST "/v1/admin/parked-letters/$id/redrive"
else
  echo "redrive: re-driving every parked letter of $service"
  call POST "/v1/admin/parked-letters/redrive"
fi
echo "redrive: still parked (first page):"
call GET "/v1/admin/parked-letters?limit=20"
