#!/usr/bin/env bash
# The service catalogue (catalog/, docs/adr/0041-service-catalogue.md).
#
#   scripts/catalog.sh install   Graphviz and chromium (Debian) when missing, the pinned venv and npm packages
#   scripts/catalog.sh build     generate the static site into .run/catalog/ (CATALOG_OUT to change)
#   scripts/catalog.sh check     the entity checks, the site checks and the headless-browser test
#   scripts/catalog.sh python    install what is missing, print the venv's interpreter
#
# The venv lives in ~/.cache/lisasports-platform/catalog-venv (pinned
# scripts/catalog/requirements.txt; rebuilt when that file changes).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_dir="${LISASPORTS_CACHE_DIR:-$HOME/.cache/lisasports-platform}"
venv="$cache_dir/catalog-venv"
requirements="$here/scripts/catalog/requirements.txt"
# Backstage's entity validators (npm, pinned by package-lock.json).
node_dir="$cache_dir/catalog-node"
node_lock="$here/scripts/catalog/backstage/package-lock.json"
export CATALOG_NODE_MODULES="$node_dir/node_modules"
export CATALOG_CHROMIUM="${CATALOG_CHROMIUM:-/usr/bin/chromium}"

log() { printf '[catalog] %s\n' "$*" >&2; }

apt_install() {
  log "installing $* (Debian packages; progress below)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    -o DPkg::Lock::Timeout=600 -o Dpkg::Progress-Fancy=0 "$@" >&2
}

install_debian() {
  local want=()
  command -v dot >/dev/null || want+=(graphviz)
  if [ "${1:-}" = browser ]; then
    [ -x "$CATALOG_CHROMIUM" ] || want+=(chromium fonts-dejavu-core)
  fi
  if [ "${#want[@]}" -gt 0 ]; then apt_install "${want[@]}"; fi
}

make_venv() {
  rm -rf "$venv"
  if python3 -m venv "$venv" >/dev/null 2>&1; then return 0; fi
  rm -rf "$venv"
  apt_install python3-venv
  /usr/bin/python3 -m venv "$venv"
}

install_venv() {
  mkdir -p "$cache_dir"
  local want
  want="$(sha256sum "$requirements" | cut -d' ' -f1)"
  exec 9>"$cache_dir/catalog-venv.lock"
  flock 9
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" = "$want" ]; then
    flock -u 9; return 0
  fi
  log "installing the pinned Python packages into $venv"
  make_venv
  "$venv/bin/python" -m pip install --disable-pip-version-check --no-input --progress-bar off \
    -r "$requirements" >&2
  echo "$want" > "$venv/.requirements.sha256"
  flock -u 9
}

install_node() {
  command -v npm >/dev/null || apt_install nodejs npm
  local want
  want="$(cat "$node_lock" "${node_lock%-lock.json}.json" | sha256sum | cut -d' ' -f1)"
  mkdir -p "$node_dir"
  exec 8>"$cache_dir/catalog-node.lock"
  flock 8
  if [ -d "$CATALOG_NODE_MODULES/@backstage/catalog-model" ] && [ "$(cat "$node_dir/.lock.sha256" 2>/dev/null)" = "$want" ]; then
    flock -u 8; return 0
  fi
  log "installing Backstage's catalog model (npm ci) into $node_dir"
  cp "$node_lock" "${node_lock%-lock.json}.json" "$node_dir/"
  (cd "$node_dir" && npm ci --no-audit --no-fund >&2)
  echo "$want" > "$node_dir/.lock.sha256"
  flock -u 8
}

build() {
  install_debian
  install_venv
  "$venv/bin/python" "$here/scripts/catalog/generate.py" --out "${CATALOG_OUT:-$here/.run/catalog}"
}

check() {
  install_debian browser
  install_venv
  install_node
  log "chromium: $("$CATALOG_CHROMIUM" --version 2>/dev/null)"
  cd "$here"
  "$venv/bin/python" -m pytest catalog/tests -q -p no:cacheprovider
}

case "${1:-}" in
  install) install_debian browser; install_venv; install_node ;;
  build) build ;;
  check) check ;;
  python) install_debian; install_venv; echo "$venv/bin/python" ;;
  *) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
