#!/usr/bin/env bash
# Rate-limit behaviour of the gateway prototype (maxRequestsPerSecond 5).
cd "$(dirname "$0")/.."; K="${GW:-/tmp/gw}/keys"; G=http://127.0.0.1:18000
burst() { # name n url-pattern(%d = index) curl-args...
  local name="$1" n="$2" url="$3"; shift 3; local codes=""
  for i in $(seq "$n"); do codes+="$(curl -s -o /dev/null -w '%{http_code}' "$@" "$(printf "$url" "$i")") "; done
  printf '%-52s %s\n' "$name" "$(echo $codes | tr ' ' '\n' | sort | uniq -c | tr '\n' ' ')"
}
FLOOD=$(python3 keys.py token "$K" a client_id=flood sub=flood)
GOOD=$(python3 keys.py token "$K" a client_id=good sub=good)
burst "flood: 20 x same path"                      20 "$G/v1/payments/same"     -H "authorization: Bearer $FLOOD"
burst "good, same path, right after the flood"      3 "$G/v1/payments/same"     -H "authorization: Bearer $GOOD"
sleep 1.2
burst "flood: 20 x distinct paths (ids)"           20 "$G/v1/payments/id%d"     -H "authorization: Bearer $FLOOD"
burst "flood: 20 x same path, distinct query"      20 "$G/v1/payments/q?n=%d"   -H "authorization: Bearer $FLOOD"
sleep 1.2
echo "--- the 429 itself:"
for i in $(seq 6); do curl -s -o /dev/null "$G/v1/payments/last" -H "authorization: Bearer $FLOOD"; done
curl -s -D - "$G/v1/payments/last" -H "authorization: Bearer $FLOOD"; echo
