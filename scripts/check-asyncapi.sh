#!/usr/bin/env bash
# Validates contracts/asyncapi.yaml (and the event schemas it refers to)
# with the real AsyncAPI parser, @asyncapi/cli pinned in tools/asyncapi
# (scripts/install-asyncapi.sh). Fails on any error-level diagnostic.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin=$("$here/scripts/install-asyncapi.sh")
export ASYNCAPI_METRICS_CONFIG_PATH="$(dirname "$(dirname "$(dirname "$bin")")")/analytics.json"
export SUPPRESS_NO_CONFIG_WARNING=1
doc="${1:-$here/contracts/asyncapi.yaml}"
echo "[asyncapi] validating $doc" >&2
"$bin" validate "$doc" --fail-severity error
