#!/usr/bin/env bash
# mTLS between the sidecars (issue #11, ADR 0027): the trust bundle, Dapr's
# sentry, and the daprd flags that make a sidecar talk mTLS.
#
# Sourced by scripts/stack.sh (and the gateway's start-up), or run:
#   scripts/lib/mtls.sh bundle [DIR]     make sure DIR holds a valid bundle; print DIR
#   scripts/lib/mtls.sh flags            the daprd flags, one per line (tests and scripts)
#
# The bundle (openssl, EC P-256): a root CA (ca.crt, the trust anchors every
# sidecar gets in DAPR_TRUST_ANCHORS) and an issuer CA signed by it
# (issuer.crt, issuer.key), which sentry uses to sign the sidecars' workload
# certificates. The root key never goes to sentry. It is cached (default
# ~/.cache/lisasports-platform/mtls) and made again when missing, unreadable
# or within MTLS_RENEW_DAYS (default 30) of the issuer's expiry.
set -euo pipefail

mtls_dir="${MTLS_DIR:-${HOME}/.cache/lisasports-platform/mtls}"
# Sentry's trust domain (the sidecars' control-plane trust domain); the
# workloads' own trust domain is the callees' accessControl.trustDomain.
mtls_trust_domain="${MTLS_TRUST_DOMAIN:-localhost}"
# `dapr run -f` points every sidecar at this address when the Configuration
# has spec.mtls.enabled (the CLI's fixed default), so make up uses it too.
mtls_sentry_address="${MTLS_SENTRY_ADDRESS:-127.0.0.1:50001}"

mtls_log() { printf '[mtls] %s\n' "$*" >&2; }

# Whether DIR holds a bundle that is valid for at least MTLS_RENEW_DAYS.
mtls_bundle_valid() {
  local d="$1" days="${MTLS_RENEW_DAYS:-30}"
  [ -s "$d/ca.crt" ] && [ -s "$d/issuer.crt" ] && [ -s "$d/issuer.key" ] || return 1
  openssl x509 -checkend $((days * 86400)) -noout -in "$d/ca.crt" >/dev/null 2>&1 || return 1
  openssl x509 -checkend $((days * 86400)) -noout -in "$d/issuer.crt" >/dev/null 2>&1 || return 1
  openssl verify -CAfile "$d/ca.crt" "$d/issuer.crt" >/dev/null 2>&1
}

# mtls_bundle [DIR]: makes DIR's bundle if it is missing or expiring; safe
# to run from several processes at once (flock).
mtls_bundle() {
  local d="${1:-$mtls_dir}"
  mkdir -p "$d"
  (
    flock 9
    if mtls_bundle_valid "$d"; then exit 0; fi
    mtls_log "generating the trust bundle in $d (root CA 1 year, issuer CA 180 days)"
    local tmp
    tmp="$(mktemp -d "$d/.new.XXXXXX")"
    (
      cd "$tmp"
      umask 077
      openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
      openssl req -x509 -new -key ca.key -sha256 -days 365 -subj "/O=lisasports/CN=lisasports-root" \
        -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out ca.crt 2>/dev/null
      openssl ecparam -name prime256v1 -genkey -noout -out issuer.ec.key 2>/dev/null
      # sentry reads PKCS#8
      openssl pkcs8 -topk8 -nocrypt -in issuer.ec.key -out issuer.key && rm issuer.ec.key
      openssl req -new -key issuer.key -subj "/O=lisasports/CN=cluster.local" -out issuer.csr 2>/dev/null
      printf 'basicConstraints=critical,CA:true,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectAltName=URI:spiffe://%s/ns/default/dapr-sentry\n' \
        "$mtls_trust_domain" > issuer.ext
      openssl x509 -req -in issuer.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 180 -sha256 \
        -extfile issuer.ext -out issuer.crt 2>/dev/null
      rm -f issuer.csr issuer.ext ca.srl
      chmod 644 ca.crt issuer.crt
    )
    mv -f "$tmp/ca.key" "$d/ca.key"; mv -f "$tmp/issuer.key" "$d/issuer.key"
    mv -f "$tmp/issuer.crt" "$d/issuer.crt"; mv -f "$tmp/ca.crt" "$d/ca.crt"
    rmdir "$tmp"
    mtls_bundle_valid "$d" || { mtls_log "the new bundle in $d does not verify"; exit 1; }
  ) 9>"$d/.lock"
}

# The trust anchors (PEM) a sidecar gets in DAPR_TRUST_ANCHORS.
mtls_trust_anchors() { cat "${1:-$mtls_dir}/ca.crt"; }

# mtls_daprd_flags [SENTRY_ADDRESS]: the flags that make a daprd talk mTLS
# through sentry, one per line. The ONE place these flags are written for
# scripts; testing/support/src/mtls.rs reads them from here.
mtls_daprd_flags() {
  printf '%s\n' --enable-mtls \
    --sentry-address "${1:-$mtls_sentry_address}" \
    --control-plane-trust-domain "$mtls_trust_domain" \
    --control-plane-namespace default
}

# The flags of a Dapr control-plane service (the scheduler) whose gRPC
# server the sidecars reach with mTLS once they have it, one per line.
mtls_control_plane_flags() {
  printf '%s\n' --tls-enabled \
    --sentry-address "${1:-$mtls_sentry_address}" \
    --trust-anchors-file "$mtls_dir/ca.crt" \
    --trust-domain "$mtls_trust_domain"
}

# mtls_start_sentry RUN_DIR LOG_DIR BIN_DIR: sentry on loopback with the
# bundle; pid in RUN_DIR/sentry.pid. Needs `alive` and `wait_until`/`http_ok`
# (scripts/lib/processes.sh, readiness.sh).
mtls_start_sentry() {
  local run_dir="$1" log_dir="$2" bin_dir="$3" here
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  if alive "$run_dir/sentry.pid" sentry; then mtls_log "sentry already running"; return; fi
  mtls_bundle "$mtls_dir"
  setsid "$bin_dir/sentry" --issuer-credentials "$mtls_dir" --trust-domain "$mtls_trust_domain" \
    --port "${mtls_sentry_address##*:}" --listen-address 127.0.0.1 \
    --healthz-port 8087 --healthz-listen-address 127.0.0.1 \
    --metrics-port 9102 --metrics-listen-address 127.0.0.1 \
    --config "$here/dapr-config/sentry/config.yaml" --log-level warn \
    >"$log_dir/sentry.log" 2>&1 < /dev/null &
  echo $! > "$run_dir/sentry.pid"
  wait_until "sentry at http://127.0.0.1:8087/healthz" 30 "$!" http_ok "http://127.0.0.1:8087/healthz" && return
  mtls_log "sentry did not become ready; see $log_dir/sentry.log"; tail -n 20 "$log_dir/sentry.log" >&2; return 1
}

# mtls_export_env: what every sidecar started from this shell needs.
mtls_export_env() {
  DAPR_TRUST_ANCHORS="$(mtls_trust_anchors "$mtls_dir")"
  export DAPR_TRUST_ANCHORS
}

# mtls_up RUN_DIR LOG_DIR BIN_DIR: the bundle, sentry, DAPR_TRUST_ANCHORS
# (the one hook scripts/stack.sh calls before starting sidecars).
mtls_up() {
  mtls_start_sentry "$@"
  mtls_export_env
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    bundle) mtls_bundle "${2:-$mtls_dir}"; echo "${2:-$mtls_dir}" ;;
    flags) mtls_daprd_flags "${2:-}" ;;
    control-plane-flags) mtls_control_plane_flags "${2:-}" ;;
    *) echo "usage: $0 bundle [DIR] | flags [SENTRY_ADDRESS] | control-plane-flags [SENTRY_ADDRESS]" >&2; exit 2 ;;
  esac
fi
