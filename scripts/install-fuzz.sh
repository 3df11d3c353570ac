#!/usr/bin/env bash
# Installs Schemathesis (the property-based OpenAPI tester `make fuzz` and
# `make test`'s fuzz-smoke run, ADR 0039) from PyPI into a virtualenv cached
# under ~/.cache/lisasports-platform/, pinned. Idempotent: nothing happens
# when the venv already reports the pinned version. Prints progress on
# stderr and the path of the `st` executable on stdout.
set -euo pipefail

version="${SCHEMATHESIS_VERSION:-4.32.5}"
venv="${FUZZ_VENV:-$HOME/.cache/lisasports-platform/fuzz-venv}"
log() { printf '[install-fuzz] %s\n' "$*" >&2; }

if [ -x "$venv/bin/st" ] && [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" = "$version" ]; then
  log "schemathesis $version already installed in $venv"
  echo "$venv/bin/st"; exit 0
fi
command -v python3 >/dev/null || { log "python3 is needed"; exit 1; }
if ! python3 -c 'import ensurepip' 2>/dev/null; then
  log "python3-venv is missing: installing it from Debian"
  as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi
log "creating $venv ($(python3 --version))"
mkdir -p "$(dirname "$venv")"
rm -rf "$venv"
trap 'rm -rf "$venv"; log "failed; removed the half-made $venv"' ERR
python3 -m venv "$venv"
log "pip install schemathesis==$version with its dependencies (progress below)"
"$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar on "schemathesis==$version" >&2
trap - ERR
log "$("$venv/bin/st" --version 2>&1 | head -n1) installed in $venv"
echo "$venv/bin/st"
