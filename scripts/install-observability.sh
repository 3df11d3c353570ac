#!/usr/bin/env bash
# Installs the observability tools the platform runs and checks with, pinned
# and cached under $HOME; idempotent (a tool already at its pinned version is
# left alone) and printing progress:
#   * the trace backend (ADR 0047): Zipkin server (its exec jar, with the
#     UI, from Maven Central through `mvn`, sha256-pinned below) into
#     ~/.cache/lisasports-observability/m2, and the OpenTelemetry Collector
#     that feeds it OTLP (tools/otelcol: otlp receiver, batch, zipkin
#     exporter), built from the Go module proxy into
#     ~/.cache/lisasports-observability/bin;
#   * Sloth (SLO files -> Prometheus burn-rate rules), built from the module
#     proxy at the version tools/sloth/go.mod pins (ADR 0033), same place;
#   * vegeta (the load tool of `make slo`), likewise from tools/vegeta;
#   * Prometheus and promtool: Debian's `prometheus` package (the Debian
#     archive pins the version; the check below names it).
#
#   scripts/install-observability.sh [zipkin|otelcol|sloth|vegeta|prometheus ...]
#   (default: prometheus zipkin otelcol sloth)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
obs_bin="${OBSERVABILITY_BIN_DIR:-$HOME/.cache/lisasports-observability/bin}"
log() { printf '[install-observability] %s\n' "$*" >&2; }
mkdir -p "$obs_bin"
export GOFLAGS="${GOFLAGS:--buildvcs=false}" CGO_ENABLED=0

# build_go_tool <name> <wrapper dir> <module> <package> <binary> [extra -ldflags]
# Builds <package> at the version the wrapper module requires; a stamp holds
# the digest of the wrapper's go.mod/go.sum, so a bump rebuilds.
build_go_tool() {
  local name="$1" wrapper="$here/tools/$2" module="$3" pkg="$4" bin="$obs_bin/$5" ldflags="${6:-}" version stamp build_id start
  version="$(awk -v m="$module" '$1==m {print $2; exit} $1=="require" && $2==m {print $3; exit}' "$wrapper/go.mod")"
  stamp="$bin.version"
  build_id="$version $(cat "$wrapper/go.mod" "$wrapper/go.sum" | sha256sum | cut -c1-16)"
  if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$build_id" ]; then
    log "$name $version already in $obs_bin"; return 0
  fi
  command -v go >/dev/null || { log "go is needed to build $name"; exit 1; }
  log "building $name $version from the Go module proxy (the first build takes minutes; Go caches it)"
  start=$(date +%s)
  (cd "$wrapper" && go build -trimpath -ldflags "-s -w $ldflags" -o "$bin.tmp" "$pkg")
  mv -f "$bin.tmp" "$bin"
  echo "$build_id" > "$stamp"
  log "built $name $version in $(( $(date +%s) - start ))s"
}

# Zipkin server: the exec jar (UI included) at a pinned version, fetched by
# Maven (which checks Central's .sha1) and then checked against the sha256
# pinned here, which Central also publishes beside the jar.
ZIPKIN_VERSION=3.6.1
ZIPKIN_SHA256=d8326e0ed4f43855dba81228f688554706e52578a7c782d9a90b73f8680654a1
zipkin_m2="${ZIPKIN_M2_DIR:-$HOME/.cache/lisasports-observability/m2}"
ZIPKIN_JAR="$zipkin_m2/io/zipkin/zipkin-server/$ZIPKIN_VERSION/zipkin-server-$ZIPKIN_VERSION-exec.jar"

install_zipkin() {
  if [ -f "$ZIPKIN_JAR" ] && [ "$(cat "$ZIPKIN_JAR.verified" 2>/dev/null)" = "$ZIPKIN_SHA256" ]; then
    log "zipkin $ZIPKIN_VERSION already in $zipkin_m2"; return 0
  fi
  command -v java >/dev/null || { log "java (17+) is needed to run Zipkin"; exit 1; }
  command -v mvn >/dev/null || { log "mvn is needed to fetch Zipkin from Maven Central"; exit 1; }
  log "fetching zipkin-server $ZIPKIN_VERSION (exec jar) from Maven Central"
  mvn -B -q -ntp -C -Dstyle.color=never -Dmaven.repo.local="$zipkin_m2" \
    dependency:get -Dartifact="io.zipkin:zipkin-server:$ZIPKIN_VERSION:jar:exec" -Dtransitive=false \
    >"$zipkin_m2.log" 2>&1 || { log "mvn failed; see $zipkin_m2.log"; tail -n 20 "$zipkin_m2.log" >&2; exit 1; }
  local got
  got="$(sha256sum "$ZIPKIN_JAR" | cut -d' ' -f1)"
  if [ "$got" != "$ZIPKIN_SHA256" ]; then
    log "zipkin jar sha256 $got is not the pinned $ZIPKIN_SHA256; removed"
    rm -f "$ZIPKIN_JAR"; exit 1
  fi
  echo "$got" > "$ZIPKIN_JAR.verified"
  log "zipkin $ZIPKIN_VERSION fetched, sha256 verified"
}

install_prometheus() {
  if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
    log "prometheus $(prometheus --version 2>&1 | awk 'NR==1 {print $3}') already installed"; return 0
  fi
  log "installing Debian's prometheus package (prometheus + promtool)"
  apt-get update -qq
  # The package's own service is not started here (no init system runs it);
  # make up starts Prometheus with the project's configuration.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  log "installed $(prometheus --version 2>&1 | head -n1)"
}

tools=("$@")
[ "${#tools[@]}" -gt 0 ] || tools=(prometheus zipkin otelcol sloth)
for t in "${tools[@]}"; do
  case "$t" in
    zipkin) install_zipkin ;;
    zipkin-jar) install_zipkin; echo "$ZIPKIN_JAR" ;;  # for scripts/lib/observability.sh
    otelcol) build_go_tool otelcol otelcol go.opentelemetry.io/collector/otelcol \
               . lisasports-otelcol ;;
    sloth) build_go_tool sloth sloth github.com/slok/sloth \
             github.com/slok/sloth/cmd/sloth sloth \
             "-X github.com/slok/sloth/internal/info.Version=$(awk '$1=="require" && $2=="github.com/slok/sloth" {print $3}' "$here/tools/sloth/go.mod")" ;;
    vegeta) build_go_tool vegeta vegeta github.com/tsenart/vegeta/v12 \
              github.com/tsenart/vegeta/v12 vegeta \
              "-X main.Version=$(awk '$1=="require" && $2=="github.com/tsenart/vegeta/v12" {print $3}' "$here/tools/vegeta/go.mod")" ;;
    prometheus) install_prometheus ;;
    *) log "unknown tool $t (zipkin, otelcol, sloth, vegeta, prometheus)"; exit 2 ;;
  esac
done
