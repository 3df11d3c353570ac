#!/usr/bin/env bash
# docker-compose.yml cannot run here (no Docker engine); this checks what can
# be checked without one: the file is valid Compose, every Dapr image is the
# version tools/dapr/go.mod pins, and every app in dapr.yaml has a service and
# a sidecar sharing its network namespace.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

command -v docker-compose >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
}
# Values a user must provide; placeholders are enough to validate the file.
export AUTH_KEYS_ENCRYPTION_KEY="${AUTH_KEYS_ENCRYPTION_KEY:-placeholder-for-validation}"
# A folder (the trust bundle's, scripts/lib/mtls.sh): an absolute path.
export PLATFORM_MTLS_DIR="${PLATFORM_MTLS_DIR:-/placeholder-for-validation}"
for var in AUTH_BOOTSTRAP_ADMIN_SECRET POSTGRES_PASSWORD AUTH_DB_PASSWORD PAYMENTS_DB_PASSWORD \
           BOOKKEEPING_DB_PASSWORD COMMUNICATION_DB_PASSWORD PSP_WEBHOOK_SECRET NOTIFY_RECEIPT_SECRET \
           BOOKINGS_DB_PASSWORD BOOKINGS_CLIENT_SECRET DAPR_TRUST_ANCHORS DAPR_API_TOKEN APP_API_TOKEN REDIS_PASSWORD; do
  export "$var=${!var:-placeholder-for-validation}"
done
docker-compose -f docker-compose.yml config -q

pinned="$(awk '$1=="github.com/dapr/dapr" {print $2; exit}' tools/dapr/go.mod)"
pinned="${pinned#v}"
resolved="$(docker-compose -f docker-compose.yml config)"
status=0
images="$(grep -oE 'image: daprio/[a-z]+:[^[:space:]]+' <<<"$resolved" | awk '{print $2}')"
[ -n "$images" ] || { echo "compose: no daprio/* image found" >&2; status=1; }
while read -r image; do
  [ -n "$image" ] || continue
  tag="${image##*:}"
  if [ "$tag" != "$pinned" ]; then echo "compose: $image is not the pinned Dapr $pinned" >&2; status=1; fi
done <<<"$images"

for app in $(awk '/appID:/ {print $3}' dapr.yaml); do
  grep -qE "^  $app:$" <<<"$resolved" || { echo "compose: no service $app" >&2; status=1; }
  grep -qE "network_mode: service:$app$" <<<"$resolved" || { echo "compose: no sidecar in the network namespace of $app" >&2; status=1; }
done
[ "$status" -eq 0 ] && echo "compose: valid; Dapr images at $pinned; $(awk '/appID:/' dapr.yaml | wc -l) services with sidecars"
exit "$status"
