#!/usr/bin/env bash
# Installs finance-notifier's pinned dependencies (requirements-test.txt,
# which includes requirements.txt) into a venv under
# ~/.cache/lisasports-platform/, with the ordinary tools: python3 -m venv and
# pip. Skipped when the venv already holds exactly these pins (a digest of
# the requirement files is kept beside it). Prints the venv's path.
#
#   examples/finance-notifier/install.sh          (FINANCE_NOTIFIER_VENV overrides the path)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${FINANCE_NOTIFIER_VENV:-$HOME/.cache/lisasports-platform/finance-notifier-venv}"
want="$(cat "$here/requirements.txt" "$here/requirements-test.txt" | sha256sum | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" = "$want" ]; then
  echo "$venv"; exit 0
fi
echo "[finance-notifier] installing its pinned requirements into $venv" >&2
mkdir -p "$(dirname "$venv")"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements-test.txt" >&2
# The pins are complete: pip check fails if one of them lacks a dependency.
"$venv/bin/python" -m pip check >&2
echo "$want" > "$venv/.requirements.sha256"
echo "$venv"
