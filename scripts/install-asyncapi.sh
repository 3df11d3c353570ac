#!/usr/bin/env bash
# Installs the AsyncAPI CLI that `make contracts-check` validates
# contracts/asyncapi.yaml with: @asyncapi/cli pinned in tools/asyncapi
# (package.json + package-lock.json, installed with `npm ci`, so every
# transitive version is the locked one) into
# ~/.cache/lisasports-platform/asyncapi-cli-<version>. Skipped when that
# install matches the lock. Progress on stderr; the CLI's path on stdout.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/progress.sh
source "$here/scripts/lib/progress.sh"

command -v npm >/dev/null || { echo "install-asyncapi: npm is missing (Debian: apt-get install nodejs npm)" >&2; exit 1; }
version=$(sed -n 's/.*"@asyncapi\/cli": "\([0-9.]*\)".*/\1/p' "$here/tools/asyncapi/package.json" | head -n1)
[ -n "$version" ] || { echo "install-asyncapi: no pinned @asyncapi/cli version in tools/asyncapi/package.json" >&2; exit 1; }
dir="${ASYNCAPI_DIR:-$HOME/.cache/lisasports-platform/asyncapi-cli-$version}"
bin="$dir/node_modules/.bin/asyncapi"

if [ -x "$bin" ] && cmp -s "$here/tools/asyncapi/package-lock.json" "$dir/package-lock.json"; then
  echo "[asyncapi] @asyncapi/cli $version already installed in $dir" >&2
else
  echo "[asyncapi] installing @asyncapi/cli $version (npm ci from tools/asyncapi/package-lock.json) into $dir" >&2
  mkdir -p "$dir"
  cp "$here/tools/asyncapi/package.json" "$here/tools/asyncapi/package-lock.json" "$dir/"
  run_with_progress "npm ci @asyncapi/cli $version" "$dir/npm-ci.log" \
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=http
fi
# No usage data sent (the CLI reads this file; see `asyncapi config analytics`).
[ -f "$dir/analytics.json" ] || echo '{"analyticsEnabled":"false","infoMessageShown":"true","userID":"lisasports-ci"}' > "$dir/analytics.json"
ASYNCAPI_METRICS_CONFIG_PATH="$dir/analytics.json" SUPPRESS_NO_CONFIG_WARNING=1 "$bin" --version >&2
echo "$bin"
