#!/usr/bin/env bash
# Generates the Prometheus rules of every SLO file (slo/<service>.yaml, Sloth
# prometheus/v1) with the pinned Sloth into slo/rules/<service>.yaml: the
# SLI recording rules, the error-budget metadata and the multi-window,
# multi-burn-rate page/ticket alerts. The rules are generated, never edited.
#
#   scripts/slo-rules.sh           write slo/rules/
#   scripts/slo-rules.sh --check   fail if slo/rules/ is not what the SLO files
#                                  generate (run by make test), then
#                                  `promtool check rules` and `promtool test rules`
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
obs_bin="${OBSERVABILITY_BIN_DIR:-$HOME/.cache/lisasports-observability/bin}"
log() { printf '[slo-rules] %s\n' "$*" >&2; }
bash scripts/install-observability.sh sloth prometheus

out=slo/rules
if [ "${1:-}" = --check ]; then out="$(mktemp -d)"; trap 'rm -rf "$out"' EXIT; fi
mkdir -p "$out"
for spec in slo/*.yaml; do
  name="$(basename "$spec")"
  "$obs_bin/sloth" generate --input "$spec" --out "$out/$name" >/dev/null 2>"$out/.sloth.log" \
    || { cat "$out/.sloth.log" >&2; exit 1; }
done
rm -f "$out/.sloth.log"
if [ "${1:-}" = --check ]; then
  if ! diff -r -q slo/rules "$out" >/dev/null; then
    diff -r slo/rules "$out" | head -n 40 >&2
    log "slo/rules/ is not what slo/*.yaml generate: run make slo-rules and commit"; exit 1
  fi
  log "slo/rules/ is what slo/*.yaml generate ($(ls slo/*.yaml | wc -l) services)"
  promtool check rules slo/rules/*.yaml
  promtool test rules slo/tests/*.yaml
else
  log "generated $(ls "$out"/*.yaml | wc -l) rule files in $out"
fi
