#!/usr/bin/env bash
# Trust bundle for sentry with openssl: a root CA and an issuer CA signed by it
# (both EC P-256), written as sentry expects them in --issuer-credentials:
# ca.crt (root), issuer.crt, issuer.key. Alternative: start sentry with an
# empty credentials directory and it generates (and persists) its own.
#   gen-certs.sh DIR [TRUST_DOMAIN]
set -euo pipefail
d="$1"; td="${2:-localhost}"; mkdir -p "$d"; cd "$d"
openssl ecparam -name prime256v1 -genkey -noout -out ca.key
openssl req -x509 -new -key ca.key -sha256 -days 365 -subj "/O=platform/CN=platform-root" \
  -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.crt
openssl ecparam -name prime256v1 -genkey -noout -out issuer.ec.key
# sentry reads PKCS#8 or SEC1; PKCS#8 is the safe choice
openssl pkcs8 -topk8 -nocrypt -in issuer.ec.key -out issuer.key && rm issuer.ec.key
openssl req -new -key issuer.key -subj "/O=platform/CN=cluster.local" -out issuer.csr
openssl x509 -req -in issuer.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 180 -sha256 \
  -extfile <(printf 'basicConstraints=critical,CA:true,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectAltName=URI:spiffe://%s/ns/default/dapr-sentry\n' "$td") \
  -out issuer.crt
rm -f issuer.csr ca.srl
chmod 600 ca.key issuer.key
echo "root: $d/ca.crt (DAPR_TRUST_ANCHORS), issuer: $d/issuer.crt + issuer.key; keep ca.key offline"
