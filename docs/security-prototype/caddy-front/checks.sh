#!/usr/bin/env bash
# Edge checks through Caddy (:18800) → gateway daprd, OPA-only variant (:18200).
cd "$(dirname "$0")/.."; K="${GW:-/tmp/gw}/keys"; E=http://127.0.0.1:18800
tok() { python3 keys.py token "$K" "$@"; }
show() {
  local name="$1"; shift; local code; code=$(curl -s -o /tmp/gw/cbody -D /tmp/gw/chdr -w '%{http_code}' "$@")
  printf '%-30s %s | %s| %s\n' "$name" "$code" \
    "$(grep -i '^content-type\|^www-auth\|^retry-after' /tmp/gw/chdr | tr -d '\r' | tr '\n' ' ')" "$(head -c 140 /tmp/gw/cbody)"
}
T=$(tok a aud=payments scope="payments:read payments:write")
show "valid"              -H "authorization: Bearer $T" "$E/v1/payments/p1?b=2&a=x%20y"
show "no token"           "$E/v1/payments/p1"
show "wrong audience"     -H "authorization: Bearer $(tok a aud=bookkeeping)" "$E/v1/payments/p1"
show "missing scope"      -H "authorization: Bearer $(tok a aud=payments scope=x)" "$E/v1/payments/p1"
show "2 MiB body"         -H "authorization: Bearer $T" -XPOST --data-binary @<(head -c 2097152 /dev/zero) "$E/v1/payments"
show "2 MiB chunked"      -H "authorization: Bearer $T" -H 'transfer-encoding: chunked' -XPOST --data-binary @<(head -c 2097152 /dev/zero) "$E/v1/payments"
for i in $(seq 8); do curl -s -o /dev/null -H "authorization: Bearer $T" "$E/v1/payments/same"; done
show "9th request in 1 s" -H "authorization: Bearer $T" "$E/v1/payments/same"
show "spoofed XFF reaches app as" -H "authorization: Bearer $T" -H 'x-forwarded-for: 6.6.6.6' -H 'x-real-ip: 7.7.7.7' "$E/v1/payments/xff"
sleep 1.1
echo "-- token endpoint (public route, limiter keyed on the peer IP Caddy put in X-Forwarded-For), 8 requests with spoofed XFF:"
for i in $(seq 8); do printf '%s ' "$(curl -s -o /dev/null -w '%{http_code}' -H "x-forwarded-for: 10.0.0.$i" -XPOST "$E/oauth2/token")"; done; echo
