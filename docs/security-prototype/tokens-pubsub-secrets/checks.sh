#!/usr/bin/env bash
# Checks for tokens, pub/sub scopes and secrets (run.sh up first).
S="${GW:-/tmp/gw}/tps"; P=127.0.0.1:18702; A=127.0.0.1:18701
c() { local out; out=$(curl -s -w "\n%{http_code}" "${@:2}"); printf '%-58s %s | %s\n' "$1" "$(tail -n1 <<<"$out")" "$(head -n1 <<<"$out" | cut -c1-170)"; }
TP="dapr-api-token: api-token-payments"; TA="dapr-api-token: api-token-auth"
echo "== DAPR_API_TOKEN on the sidecar API"
c "GET /v1.0/metadata without token"                 $P/v1.0/metadata
c "GET /v1.0/metadata with token"                    -H "$TP" -o /dev/null $P/v1.0/metadata
c "GET /v1.0/healthz without token"                  $P/v1.0/healthz
c "GET /v1.0/healthz/outbound without token"         $P/v1.0/healthz/outbound
c "POST /v1.0/healthz without token"                 -XPOST $P/v1.0/healthz
c "invoke auth via payments' sidecar, no token"      $P/v1.0/invoke/auth/method/oauth2/jwks
c "invoke auth via payments' sidecar, with token"    -H "$TP" $P/v1.0/invoke/auth/method/oauth2/jwks
echo "== APP_API_TOKEN: what the auth app received on that invocation (token of auth's own sidecar):"
grep '"/oauth2/jwks"' "$S/auth-app.log" | tail -n1 | cut -c1-260
echo "== publishing scopes (payments=payments; auth=; allowedTopics payments,bookkeeping,communication,payments.deadletter)"
c "payments publishes to payments"                   -H "$TP" -H 'content-type: application/json' -d '{"n":1}' $P/v1.0/publish/pubsub/payments
c "payments publishes to bookkeeping (not its own)"  -H "$TP" -H 'content-type: application/json' -d '{"n":1}' $P/v1.0/publish/pubsub/bookkeeping
c "payments publishes to foo (not in allowedTopics)" -H "$TP" -H 'content-type: application/json' -d '{"n":1}' $P/v1.0/publish/pubsub/foo
c "auth publishes to payments"                       -H "$TA" -H 'content-type: application/json' -d '{"n":1}' $A/v1.0/publish/pubsub/payments
sleep 1
echo "== delivery of the published event to payments' app:"
grep '"/events/payments"' "$S/payments-app.log" | tail -n1 | cut -c1-260
echo "== input binding delivery:"
grep '"/payments-cron"' "$S/payments-app.log" | tail -n1 | cut -c1-260
echo "== secrets (scopes: localsecrets deny except payments:webhook-secret; envsecrets deny)"
c "GET secret payments:webhook-secret (allowed)"     -H "$TP" "$P/v1.0/secrets/localsecrets/payments:webhook-secret"
c "GET secret redis:password (not allowed)"          -H "$TP" "$P/v1.0/secrets/localsecrets/redis:password"
c "GET bulk"                                         -H "$TP" "$P/v1.0/secrets/localsecrets/bulk"
c "GET env secret SMTP_PASSWORD (store denied)"      -H "$TP" "$P/v1.0/secrets/envsecrets/SMTP_PASSWORD"
echo "pubsub with redisPassword from secretKeyRef initialised: $(grep -c 'Component loaded: pubsub' "$S/payments-daprd.log") (redis-server requires the password)"
echo "== transactional outbox through the scoped pubsub (internal topic defaultpaymentspaymentsoutbox allowed)"
c "payments: state transaction on outbox-state" -H "$TP" -H 'content-type: application/json' \
  -d '{"operations":[{"operation":"upsert","request":{"key":"k1","value":{"n":1}}}]}' $P/v1.0/state/outbox-state/transaction
