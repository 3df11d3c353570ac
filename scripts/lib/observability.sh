# shellcheck shell=bash
# Sourced by scripts/stack.sh: the trace backend (Jaeger all-in-one, OTLP in,
# query API + UI out) and Prometheus (scraping every service, sidecar, the
# pluggable binding and the gateway), as processes next to the platform.
# Needs: log, alive, stop_process (scripts/lib/processes.sh), wait_until,
# http_ok (scripts/lib/readiness.sh), here, run_dir, log_dir.
#
# Ports (loopback; outside 8000-8004/3500-3509/4500-4509/9090-9099):
#   Jaeger: OTLP gRPC 4317, OTLP HTTP 4318, query API + UI 16686, admin 14269
#   Prometheus: 9190 (its usual 9090 is the gateway sidecar's metrics port)

obs_bin="${OBSERVABILITY_BIN_DIR:-$HOME/.cache/lisasports-observability/bin}"
JAEGER_QUERY_URL="${JAEGER_QUERY_URL:-http://127.0.0.1:16686}"
PROMETHEUS_URL="${PROMETHEUS_URL:-http://127.0.0.1:9190}"

# Every service exports its spans to the trace backend (OTLP/gRPC), and the
# sidecars (dapr-config/local/config.yaml, tracing.otel) do the same.
export OTEL_EXPORTER_OTLP_ENDPOINT="${OTEL_EXPORTER_OTLP_ENDPOINT:-http://127.0.0.1:4317}"

observability_up() {
  # Prometheus loads the burn-rate rules generated from slo/*.yaml, which
  # are committed in slo/rules/ (make slo-rules; make test checks them).
  bash "$here/scripts/install-observability.sh" prometheus jaeger
  if alive "$run_dir/jaeger.pid" jaeger-all-in-one; then
    log "trace backend already running"
  else
    # In-memory storage, bounded: a local backend for looking, not keeping.
    SPAN_STORAGE_TYPE=memory setsid "$obs_bin/jaeger-all-in-one" \
      --memory.max-traces=50000 \
      --collector.otlp.enabled=true \
      --collector.otlp.grpc.host-port=127.0.0.1:4317 \
      --collector.otlp.http.host-port=127.0.0.1:4318 \
      --collector.grpc-server.host-port=127.0.0.1:14250 \
      --collector.http-server.host-port=127.0.0.1:14268 \
      --query.http-server.host-port=127.0.0.1:16686 \
      --query.grpc-server.host-port=127.0.0.1:16685 \
      --admin.http.host-port=127.0.0.1:14269 \
      --log-level=warn >"$log_dir/jaeger.log" 2>&1 < /dev/null &
    echo $! > "$run_dir/jaeger.pid"
  fi
  wait_until "trace backend at $JAEGER_QUERY_URL/api/services" 60 "$(cat "$run_dir/jaeger.pid")" \
    http_ok "$JAEGER_QUERY_URL/api/services" \
    || { log "trace backend did not start; see $log_dir/jaeger.log"; tail -n 20 "$log_dir/jaeger.log" >&2; return 1; }
  if alive "$run_dir/prometheus.pid" prometheus; then
    log "prometheus already running"
  else
    mkdir -p "$run_dir/prometheus"
    setsid prometheus --config.file="$here/observability/prometheus.yml" \
      --storage.tsdb.path="$run_dir/prometheus/data" --storage.tsdb.retention.time=2d \
      --web.listen-address=127.0.0.1:9190 --web.enable-lifecycle \
      --web.console.templates="$here/dashboards/consoles" \
      --web.console.libraries="$here/dashboards/consoles" \
      >"$log_dir/prometheus.log" 2>&1 < /dev/null &
    echo $! > "$run_dir/prometheus.pid"
  fi
  wait_until "prometheus at $PROMETHEUS_URL/-/ready" 60 "$(cat "$run_dir/prometheus.pid")" \
    http_ok "$PROMETHEUS_URL/-/ready" \
    || { log "prometheus did not start; see $log_dir/prometheus.log"; tail -n 20 "$log_dir/prometheus.log" >&2; return 1; }
}

observability_down() {
  stop_process "$run_dir/prometheus.pid" prometheus prometheus
  stop_process "$run_dir/jaeger.pid" "trace backend" jaeger-all-in-one
}

observability_status() {
  alive "$run_dir/jaeger.pid" jaeger-all-in-one && echo "trace backend: up" || echo "trace backend: down"
  alive "$run_dir/prometheus.pid" prometheus && echo "prometheus: up" || echo "prometheus: down"
}

observability_endpoints() {
  printf '  Traces (Jaeger query API): %s/api/traces?service=payments   Prometheus: %s (consoles: %s/consoles/platform.html)\n' \
    "$JAEGER_QUERY_URL" "$PROMETHEUS_URL" "$PROMETHEUS_URL"
}
