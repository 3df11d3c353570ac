# shellcheck shell=bash
# Sourced by scripts/stack.sh: the trace backend (Zipkin server with its UI,
# fed by an OpenTelemetry Collector that takes OTLP; ADR 0047) and Prometheus
# (scraping every service, sidecar, the pluggable binding and the gateway),
# as processes next to the platform.
# Needs: log, alive, stop_process (scripts/lib/processes.sh), wait_until,
# http_ok (scripts/lib/readiness.sh), here, run_dir, log_dir.
#
# Ports (loopback; outside 8000-8004/3500-3509/4500-4509/9090-9099):
#   Zipkin: UI http://127.0.0.1:9411/zipkin/, API /api/v2/..., metrics /prometheus
#   Collector: OTLP gRPC 4317, OTLP HTTP 4318, its own metrics 8888
#   Prometheus: 9190 (its usual 9090 is the gateway sidecar's metrics port)

obs_bin="${OBSERVABILITY_BIN_DIR:-$HOME/.cache/lisasports-observability/bin}"
ZIPKIN_URL="${ZIPKIN_URL:-http://127.0.0.1:9411}"
PROMETHEUS_URL="${PROMETHEUS_URL:-http://127.0.0.1:9190}"

# Every service exports its spans over OTLP/gRPC to the collector, and the
# sidecars (dapr-config/local/config.yaml, tracing.otel) do the same.
export OTEL_EXPORTER_OTLP_ENDPOINT="${OTEL_EXPORTER_OTLP_ENDPOINT:-http://127.0.0.1:4317}"

# tcp_listens <host> <port>: something accepts TCP connections there.
tcp_listens() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

trace_backend_up() {
  local zipkin_jar
  zipkin_jar="$(bash "$here/scripts/install-observability.sh" zipkin-jar)" || return 1
  bash "$here/scripts/install-observability.sh" otelcol || return 1
  if alive "$run_dir/zipkin.pid" zipkin-server; then
    log "zipkin already running"
  else
    # In-memory storage, bounded (oldest traces go first): a local backend
    # for looking, not keeping. Loopback only; a small heap and the serial
    # collector because the machine is small and shared. (Spring replaces
    # a list as a whole, so the one port is given with all its fields.)
    STORAGE_TYPE=mem MEM_MAX_SPANS=200000 QUERY_PORT=9411 \
      setsid java -Xms64m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
      -jar "$zipkin_jar" '--armeria.ports[0].ip=127.0.0.1' '--armeria.ports[0].port=9411' \
      '--armeria.ports[0].protocols[0]=http' --logging.level.root=WARN \
      >"$log_dir/zipkin.log" 2>&1 < /dev/null &
    echo $! > "$run_dir/zipkin.pid"
  fi
  if alive "$run_dir/otelcol.pid" lisasports-otelcol; then
    log "trace collector already running"
  else
    setsid "$obs_bin/lisasports-otelcol" --config="file:$here/observability/otelcol.yaml" \
      >"$log_dir/otelcol.log" 2>&1 < /dev/null &
    echo $! > "$run_dir/otelcol.pid"
  fi
  wait_until "trace collector (OTLP gRPC 127.0.0.1:4317)" 60 "$(cat "$run_dir/otelcol.pid")" \
    tcp_listens 127.0.0.1 4317 \
    || { log "trace collector did not start; see $log_dir/otelcol.log"; tail -n 20 "$log_dir/otelcol.log" >&2; return 1; }
  # The JVM's start takes 10-30 s on a busy 2-core machine.
  wait_until "zipkin at $ZIPKIN_URL/health" 120 "$(cat "$run_dir/zipkin.pid")" \
    http_ok "$ZIPKIN_URL/health" \
    || { log "zipkin did not start; see $log_dir/zipkin.log"; tail -n 20 "$log_dir/zipkin.log" >&2; return 1; }
}

observability_up() {
  trace_backend_up || return 1
  # Prometheus loads the burn-rate rules generated from slo/*.yaml, which
  # are committed in slo/rules/ (make slo-rules; make test checks them).
  bash "$here/scripts/install-observability.sh" prometheus
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
  stop_process "$run_dir/otelcol.pid" "trace collector" lisasports-otelcol
  stop_process "$run_dir/zipkin.pid" zipkin zipkin-server
}

observability_status() {
  alive "$run_dir/zipkin.pid" zipkin-server && echo "zipkin: up" || echo "zipkin: down"
  alive "$run_dir/otelcol.pid" lisasports-otelcol && echo "trace collector: up" || echo "trace collector: down"
  alive "$run_dir/prometheus.pid" prometheus && echo "prometheus: up" || echo "prometheus: down"
}

observability_endpoints() {
  printf '  Traces (Zipkin UI): %s/zipkin/  (API %s/api/v2/trace/{trace id})   Prometheus: %s (consoles: %s/consoles/platform.html)\n' \
    "$ZIPKIN_URL" "$ZIPKIN_URL" "$PROMETHEUS_URL" "$PROMETHEUS_URL"
}
