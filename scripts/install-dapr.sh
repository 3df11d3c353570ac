#!/usr/bin/env bash
# Builds the pinned Dapr runtime (daprd, placement, scheduler, sentry) and the
# Dapr CLI from the Go module proxy into ~/.dapr/bin. Idempotent: a binary
# that already reports the pinned version is not rebuilt.
#
# Why from source: see docs/adr/0002-dapr-built-from-source.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
wrapper="$here/tools/dapr"
cli_wrapper="$here/tools/dapr-cli"
bin_dir="${DAPR_BIN_DIR:-$HOME/.dapr/bin}"

# The pinned runtime version is the one in the wrapper's go.mod; nothing else
# restates it except docker-compose.yml, which `make check-compose` compares.
dapr_version="$(awk '$1=="github.com/dapr/dapr" {print $2; exit}' "$wrapper/go.mod")"
dapr_version="${dapr_version#v}"
cli_version="$(awk '$1=="github.com/dapr/cli" {print $2; exit}' "$cli_wrapper/go.mod")"
cli_version="${cli_version#v}"

log() { printf '[install-dapr] %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/progress.sh
. "$here/scripts/lib/progress.sh"

installed_version() { # $1 = binary; prints its version or nothing
  [ -x "$1" ] || return 0
  "$1" --version 2>/dev/null | head -n1 | tr -d '[:space:]' || true
}

mkdir -p "$bin_dir"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
export CGO_ENABLED=0

runtime_bins=(daprd placement scheduler sentry)
all_present() { for b in "${runtime_bins[@]}"; do [ -x "$bin_dir/$b" ] || return 1; done; }
# Only daprd has --version; a stamp records what the binaries were built
# from: the version and a digest of the wrapper module (a changed go.mod or
# go.sum, e.g. a dependency bump, rebuilds).
stamp="$bin_dir/.runtime-version"
patches=("$wrapper"/patches/*.patch)
build_id="$dapr_version $(cat "$wrapper/go.mod" "$wrapper/go.sum" "${patches[@]}" | sha256sum | cut -c1-16)"
if [ "$(installed_version "$bin_dir/daprd")" = "$dapr_version" ] \
  && [ "$(cat "$stamp" 2>/dev/null)" = "$build_id" ] \
  && all_present; then
  log "Dapr runtime $dapr_version already in $bin_dir"
else
  rm -f "$stamp"
  # The runtime carries the fixes in tools/dapr/patches (each says why and
  # which upstream release it waits for; ADR 0049): the pinned module from
  # the proxy is copied under $HOME/.cache, patched, and the wrapper builds
  # against that copy through a generated go.mod with one more `replace`.
  patch_id="$(cat "${patches[@]}" | sha256sum | cut -c1-16)"
  patched="$HOME/.cache/lisasports-dapr/dapr-v$dapr_version-$patch_id"
  if [ ! -d "$patched" ]; then
    src="$(cd "$wrapper" && go mod download -json "github.com/dapr/dapr@v$dapr_version" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
    log "patching Dapr $dapr_version: ${patches[*]##*/}"
    rm -rf "$patched.tmp" && mkdir -p "$(dirname "$patched")"
    cp -R "$src" "$patched.tmp" && chmod -R u+w "$patched.tmp"
    for p in "${patches[@]}"; do
      (cd "$patched.tmp" && GIT_CEILING_DIRECTORIES="$(dirname "$patched")" git apply -p1 "$p")
    done
    mv "$patched.tmp" "$patched"
  fi
  modfile_dir="$(mktemp -d)"
  trap 'rm -rf "$modfile_dir"' EXIT
  cp "$wrapper/go.mod" "$modfile_dir/go.mod"
  cp "$wrapper/go.sum" "$modfile_dir/go.sum"
  printf '\nreplace github.com/dapr/dapr => %s\n' "$patched" >> "$modfile_dir/go.mod"
  commit="$(cd "$wrapper" && go mod download -json "github.com/dapr/dapr@v$dapr_version" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["Origin"]["Hash"])' 2>/dev/null || echo unknown)"
  ldflags="-s -w \
    -X github.com/dapr/dapr/pkg/buildinfo.gitcommit=$commit \
    -X github.com/dapr/dapr/pkg/buildinfo.gitversion=v$dapr_version \
    -X github.com/dapr/dapr/pkg/buildinfo.version=$dapr_version \
    -X github.com/dapr/kit/logger.DaprVersion=$dapr_version"
  for b in "${runtime_bins[@]}"; do
    log "building $b $dapr_version (the first build takes minutes; Go caches it)"
    start=$(date +%s)
    run_with_progress "go build $b" "$bin_dir/.build-$b.log" \
      bash -c 'cd "$1" && go build -modfile "$5" -v -trimpath -tags allcomponents -ldflags "$2" -o "$3" "$4"' _ \
      "$wrapper" "$ldflags" "$bin_dir/$b.tmp" "github.com/dapr/dapr/cmd/$b" "$modfile_dir/go.mod"
    mv -f "$bin_dir/$b.tmp" "$bin_dir/$b"
    log "built $b in $(( $(date +%s) - start ))s"
  done
  echo "$build_id" > "$stamp"
fi

# The CLI is only used for `dapr run -f dapr.yaml` (multi-app run).
cli_installed="$("$bin_dir/dapr" version 2>/dev/null | awk '/^CLI version/ {print $3}' || true)"
if [ "$cli_installed" = "$cli_version" ]; then
  log "Dapr CLI $cli_version already in $bin_dir"
else
  log "building Dapr CLI $cli_version"
  run_with_progress "go build dapr CLI" "$bin_dir/.build-dapr-cli.log" \
    bash -c 'cd "$1" && go build -v -trimpath -ldflags "$2" -o "$3" github.com/dapr/cli' _ \
    "$cli_wrapper" "-s -w -X main.version=$cli_version -X main.apiVersion=1.0" "$bin_dir/dapr.tmp"
  mv -f "$bin_dir/dapr.tmp" "$bin_dir/dapr"
fi

printf 'daprd %s, dapr CLI %s in %s\n' "$("$bin_dir/daprd" --version)" \
  "$("$bin_dir/dapr" version 2>/dev/null | awk '/^CLI version/ {print $3}')" "$bin_dir"
