#!/usr/bin/env bash
# Installs Caddy, the edge gateway's public listener (ADR 0025), from the
# Debian archive, pinned: the version the gateway was measured with and the
# Caddyfile is written for. apt keeps the .deb in /var/cache/apt/archives.
# Idempotent: nothing happens when `caddy version` already reports it.
# The package's own systemd service (where systemd runs) is not used: the
# project starts caddy itself (scripts/lib/gateway.sh).
set -euo pipefail

version="${CADDY_DEB_VERSION:-2.6.2-5}"
log() { printf '[install-caddy] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

installed="$(dpkg-query -W -f='${Version}' caddy 2>/dev/null || true)"
if [ "$installed" = "$version" ] && command -v caddy >/dev/null; then
  log "caddy $version already installed ($(caddy version 2>/dev/null | head -n1))"
  exit 0
fi
log "installing caddy=$version from Debian (found: ${installed:-none})"
if ! apt-cache show "caddy=$version" >/dev/null 2>&1; then as_root apt-get update -qq; fi
DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "caddy=$version" >/dev/null
log "caddy $(caddy version | head -n1) installed"
