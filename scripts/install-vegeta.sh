#!/usr/bin/env bash
# Prints the path of vegeta (HTTP load tool, github.com/tsenart/vegeta) on
# stdout, after making sure it is built. The one build of it is
# scripts/install-observability.sh (pinned by tools/vegeta/go.mod, cached
# under $HOME), which `make slo` uses too; this wrapper keeps
# `make bench-gateway`'s interface (the path on stdout, progress on stderr).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/install-observability.sh" vegeta >&2
echo "${OBSERVABILITY_BIN_DIR:-$HOME/.cache/lisasports-observability/bin}/vegeta"
