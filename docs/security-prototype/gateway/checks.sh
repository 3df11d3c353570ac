#!/usr/bin/env bash
# Edge checks against the gateway prototype (gateway/run.sh up first).
# Prints: case | status | content-type and the interesting headers | body.
cd "$(dirname "$0")/.."; K="${GW:-/tmp/gw}/keys"; G=http://127.0.0.1:18000
tok() { python3 keys.py token "$K" "$@"; }
show() {
  local name="$1"; shift
  local code; code=$(curl -s -o /tmp/gw/body -D /tmp/gw/hdr -w '%{http_code}' "$@")
  printf '%-34s %s | %s| %s\n' "$name" "$code" \
    "$(grep -i '^content-type\|^www-auth\|^retry-after\|^x-error\|^x-dapr-opa\|^ratelimit-remaining' /tmp/gw/hdr | tr -d '\r' | tr '\n' ' ')" \
    "$(head -c 160 /tmp/gw/body | tr '\n' ' ')"
}
A=$(tok a)
show "valid token"                 -H "authorization: Bearer $A" "$G/v1/payments/p1?b=2&a=x%20y&a=1"
show "no token"                    "$G/v1/payments/p2"
show "basic auth (token endpoint)" -u demo:secret "$G/oauth2/token" -d grant_type=client_credentials
show "wrong audience"              -H "authorization: Bearer $(tok a aud=payments)" "$G/v1/payments/p3"
show "aud list incl. gateway"      -H "authorization: Bearer $(tok a aud=payments,platform-gateway)" "$G/v1/payments/p3"
show "wrong issuer"                -H "authorization: Bearer $(tok a iss=http://evil)" "$G/v1/payments/p4"
show "expired 60s ago (skew 5min)" -H "authorization: Bearer $(tok a exp=-60)" "$G/v1/payments/p5"
show "expired 400s ago"            -H "authorization: Bearer $(tok a exp=-400)" "$G/v1/payments/p5"
show "tampered payload"            -H "authorization: Bearer $(tok a | python3 -c 'import sys;h,p,s=sys.stdin.read().strip().split(".");print(h+"."+p[:-2]+("A" if p[-2]!="A" else "B")+p[-1]+"."+s)')" "$G/v1/payments/p6"
show "signed by b with kid key-a"  -H "authorization: Bearer $(tok b kid=key-a)" "$G/v1/payments/p7"
show "missing scope"               -H "authorization: Bearer $(tok a scope=bookkeeping:read)" "$G/v1/payments/p8"
show "write without write scope"   -H "authorization: Bearer $A" -XPOST "$G/v1/payments" -d '{}'
show "unknown route"               -H "authorization: Bearer $A" "$G/admin/clients"
show "raw invoke path"             -H "authorization: Bearer $A" "$G/v1.0/invoke/payments/method/v1/payments/p9"
show "client-sent dapr-app-id"     -H "authorization: Bearer $A" -H "dapr-app-id: auth" "$G/v1/payments/p10"
show "state API (not allowed)"     -H "authorization: Bearer $A" "$G/v1.0/state/x/y"
show "metadata API"                -H "authorization: Bearer $A" "$G/v1.0/metadata"
show "healthz"                     "$G/v1.0/healthz"
show "prefixed public path"        -H "authorization: Bearer $A" "$G/payments/v1/payments/p11?q=1"
