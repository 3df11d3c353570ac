# shellcheck shell=bash
# Sourced by scripts/stack.sh: the edge gateway of `make up` (ADR 0025).
# Caddy on :8000 (gateway/Caddyfile) in front of five gateway daprds, app id
# `gateway`, no app of their own:
#   gateway-public         opa (public routes) → ratelimit per IP      auth, webhooks
#   gateway-<service>      bearer (aud <service>) → opa (scopes) →     payments, bookkeeping,
#                          ratelimit per client                         communication, bookings
# Needs from the caller: log, alive, stop_process (processes.sh), wait_until
# and http_ok (readiness.sh), $here, $run_dir, $log_dir, $bin_dir and
# PLATFORM_NAME_RESOLUTION_DB exported.

# name:app(audience):http:grpc:internal-grpc:metrics:health (health = --dapr-public-port:
# the daprd's own /v1.0/healthz is behind its pipeline).
gateway_daprds=(
  public:-:3505:4505:4515:9095:3515
  payments:payments:3507:4507:4517:9097:3517
  bookkeeping:bookkeeping:3508:4508:4518:9098:3518
  communication:communication:3509:4509:4519:9099:3519
  bookings:bookings:3511:4511:4521:9101:3521
)
gateway_port="${GATEWAY_PORT:-8000}"
# Per gateway replica (one here): requests per second per (client id, path)
# for tokens, per (client IP, path) for the public routes; burst = the rate.
export GATEWAY_CLIENT_RPS="${GATEWAY_CLIENT_RPS:-50}"
export GATEWAY_IP_RPS="${GATEWAY_IP_RPS:-10}"
# auth's issuer and JWKS (services/auth/config/base.toml).
export GATEWAY_ISSUER="${GATEWAY_ISSUER:-http://127.0.0.1:8001}"
export GATEWAY_JWKS_URL="${GATEWAY_JWKS_URL:-http://127.0.0.1:8001/oauth2/jwks}"

# mTLS flags (mtls_daprd_flags): the gateway's sidecars talk mTLS to the
# services' sidecars like every other sidecar (ADR 0027).
declare -F mtls_daprd_flags >/dev/null || . "$(dirname "${BASH_SOURCE[0]}")/mtls.sh"

# gateway_daprd_flags <name> <http> <grpc> <internal> <metrics> <health>:
# every daprd flag of a gateway sidecar, in one place. Everything listens on
# loopback; only Caddy is public.
gateway_daprd_flags() {
  local name="$1" http="$2" grpc="$3" internal="$4" metrics="$5" health="$6" config=config.yaml resources=private
  if [ "$name" = public ]; then config=public.yaml; resources=public; fi
  printf '%s\n' --app-id gateway \
    --dapr-listen-addresses 127.0.0.1 --dapr-http-port "$http" --dapr-grpc-port "$grpc" \
    --dapr-internal-grpc-port "$internal" --dapr-internal-grpc-listen-address 127.0.0.1 \
    --metrics-port "$metrics" --metrics-listen-address 127.0.0.1 \
    --dapr-public-port "$health" --dapr-public-listen-address 127.0.0.1 \
    --config "$here/dapr-config/gateway/$config" \
    --resources-path "$here/components/gateway/$resources" \
    --resources-path "$here/dapr-config/gateway/resiliency" \
    --max-body-size 2Mi --log-level warn
  # mTLS through sentry (MTLS_SENTRY_ADDRESS; the tests pass their own),
  # one flag per line like the rest (callers read this with mapfile). The
  # test harness (testing/support/src/gateway.rs) calls this function too.
  mtls_daprd_flags
}

gateway_up() {
  bash "$here/scripts/install-caddy.sh"
  mkdir -p "$run_dir/gateway"
  local d name aud http grpc internal metrics health pidfile
  for d in "${gateway_daprds[@]}"; do
    IFS=: read -r name aud http grpc internal metrics health <<<"$d"
    pidfile="$run_dir/gateway/daprd-$name.pid"
    alive "$pidfile" "dapr-http-port $http" && continue
    mapfile -t flags < <(gateway_daprd_flags "$name" "$http" "$grpc" "$internal" "$metrics" "$health")
    # No DAPR_API_TOKEN even if the stack exports one: daprd checks it before
    # the pipeline, so every client request would be refused (ADR 0025).
    env -u DAPR_API_TOKEN -u APP_API_TOKEN GATEWAY_AUDIENCE="$aud" setsid "$bin_dir/daprd" "${flags[@]}" \
      >"$log_dir/gateway-$name.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
  done
  if ! alive "$run_dir/gateway/caddy.pid" "gateway/Caddyfile"; then
    GATEWAY_PORT="$gateway_port" GATEWAY_BIND=127.0.0.1 \
      GATEWAY_PUBLIC_UPSTREAM=127.0.0.1:3505 GATEWAY_PAYMENTS_UPSTREAM=127.0.0.1:3507 \
      GATEWAY_BOOKKEEPING_UPSTREAM=127.0.0.1:3508 GATEWAY_COMMUNICATION_UPSTREAM=127.0.0.1:3509 \
      GATEWAY_BOOKINGS_UPSTREAM=127.0.0.1:3511 \
      setsid caddy run --config "$here/gateway/Caddyfile" --adapter caddyfile \
      >"$log_dir/gateway-caddy.log" 2>&1 </dev/null &
    echo $! >"$run_dir/gateway/caddy.pid"
  fi
  for d in "${gateway_daprds[@]}"; do
    IFS=: read -r name aud http grpc internal metrics health <<<"$d"
    wait_until "gateway daprd $name" 60 "$(cat "$run_dir/gateway/daprd-$name.pid")" \
      http_ok "http://127.0.0.1:$health/v1.0/healthz" \
      || { tail -n 20 "$log_dir/gateway-$name.log" >&2; return 1; }
  done
  # Through the whole chain: Caddy → gateway-public → auth.
  wait_until "gateway on :$gateway_port (auth's JWKS through it)" 30 "$(cat "$run_dir/gateway/caddy.pid")" \
    http_ok "http://127.0.0.1:$gateway_port/auth/oauth2/jwks" \
    || { tail -n 20 "$log_dir/gateway-caddy.log" >&2; return 1; }
  printf '  Gateway: http://127.0.0.1:%s/<service>/... (e.g. /payments/v1/payments, /auth/oauth2/token)\n' "$gateway_port"
}

gateway_down() {
  local d name
  stop_process "$run_dir/gateway/caddy.pid" "gateway caddy" "gateway/Caddyfile"
  for d in "${gateway_daprds[@]}"; do
    name="${d%%:*}"
    stop_process "$run_dir/gateway/daprd-$name.pid" "gateway daprd $name" daprd
  done
}

gateway_status() {
  if http_ok "http://127.0.0.1:$gateway_port/auth/oauth2/jwks"; then echo "gateway: up on :$gateway_port"; else echo "gateway: down"; fi
}
