#!/usr/bin/env bash
# Refreshes contracts/events/baseline/: the event schemas of the last
# release, which `make contracts-check` compares the current schemas with
# (testing/contracts, evolution rules in docs/integrating.md). Run it when a
# release is cut, and commit the result with the release:
#   scripts/contracts-baseline.sh            # the schemas in the work tree
#   scripts/contracts-baseline.sh <git-ref>  # the schemas of a commit or tag
# The baseline is committed (not read from tags) because CI clones shallowly
# and the repository has no release tags yet.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
ref="${1:-}"
out=contracts/events/baseline
rm -rf "$out"
mkdir -p "$out"
if [ -n "$ref" ]; then
  commit=$(git rev-parse --short "$ref")
  version=$(git show "$ref:contracts/asyncapi.yaml" | sed -n 's/^  version: //p' | head -n1)
  git ls-tree --name-only "$ref" contracts/events/ | grep '\.schema\.json$' | grep -v '/envelope\.schema\.json$' |
    while read -r path; do git show "$ref:$path" > "$out/$(basename "$path")"; done
else
  commit="$(git rev-parse --short HEAD) + work tree"
  version=$(sed -n 's/^  version: //p' contracts/asyncapi.yaml | head -n1)
  for path in contracts/events/*.schema.json; do
    [ "$(basename "$path")" = envelope.schema.json ] || cp "$path" "$out/"
  done
fi
cat > "$out/RELEASE.md" <<MD
# Event schemas of the last release

AsyncAPI version $version, from $commit, taken on $(date -u +%Y-%m-%d) by
scripts/contracts-baseline.sh. Do not edit: \`make contracts-check\` fails when
a current schema breaks one of these (docs/integrating.md, "Changing an event").
MD
echo "contracts baseline: $(ls "$out"/*.schema.json | wc -l) schemas of version $version ($commit) in $out" >&2
