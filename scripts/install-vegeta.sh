#!/usr/bin/env bash
# Builds vegeta (HTTP load tool, github.com/tsenart/vegeta) from the Go module
# proxy, pinned, into a cache under $HOME; prints the binary's path on stdout.
# Used by `make bench-gateway`. Idempotent: an existing build is reused.
set -euo pipefail

version="${VEGETA_VERSION:-v12.13.0}"
dir="${LISASPORTS_TOOLS_DIR:-$HOME/.cache/lisasports-platform/tools}/vegeta-$version"
log() { printf '[install-vegeta] %s\n' "$*" >&2; }

if [ -x "$dir/vegeta" ]; then
  log "vegeta $version already built ($dir/vegeta)"
else
  command -v go >/dev/null || { log "go is needed (it builds Dapr too: make dapr)"; exit 1; }
  log "building vegeta $version from the Go module proxy into $dir"
  mkdir -p "$dir"
  GOBIN="$dir" GOFLAGS="${GOFLAGS:--buildvcs=false}" CGO_ENABLED=0 \
    go install "github.com/tsenart/vegeta/v12@$version"
  log "built $("$dir/vegeta" -version 2>&1 | head -n1)"
fi
echo "$dir/vegeta"
