# Sourced by scripts/k8s-check.sh and scripts/k8s-keda-check.sh: starts the
# pinned etcd + kube-apiserver on loopback, on free ports, in a temporary
# folder of their own ($work), and stops them on exit. Needs $ETCD,
# $KUBE_APISERVER, $KUBECTL, $K8S_VERSION, log() and fail().
# Exports KUBECONFIG; appends every process it starts to pids[] (k8s_cleanup
# stops them). K8S_CHECK_KEEP=1 leaves them running and prints the kubeconfig.
# shellcheck shell=bash

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

k8s_cleanup() {
  if [ "${K8S_CHECK_KEEP:-0}" = 1 ]; then log "kept: KUBECONFIG=$work/kubeconfig (pids ${pids[*]})"; return; fi
  local p i
  # The API server first (it shuts down against a live etcd), then etcd;
  # each gets 10 s to exit on SIGTERM, then SIGKILL: a kube-apiserver whose
  # graceful shutdown hung once kept `make test` waiting here for minutes.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    p="${pids[$i]}"
    kill "$p" 2>/dev/null || continue
    timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null || kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}

k8s_apiserver_start() { # <label>
  work="$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")"
  pids=()
  trap k8s_cleanup EXIT
  local etcd_client etcd_peer api_port token start p
  etcd_client="$(free_port)" etcd_peer="$(free_port)" api_port="$(free_port)"

  log "starting etcd on 127.0.0.1:$etcd_client"
  "$ETCD" --name k8s-check --data-dir "$work/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_client" --advertise-client-urls "http://127.0.0.1:$etcd_client" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "k8s-check=http://127.0.0.1:$etcd_peer" --log-level warn >"$work/etcd.log" 2>&1 &
  pids+=($!)

  token="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  printf '%s,k8s-check,k8s-check,system:masters\n' "$token" > "$work/tokens.csv"
  openssl genrsa -out "$work/sa.key" 2048 2>/dev/null

  log "starting kube-apiserver $K8S_VERSION on 127.0.0.1:$api_port"
  "$KUBE_APISERVER" --etcd-servers "http://127.0.0.1:$etcd_client" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --cert-dir "$work/certs" --token-auth-file "$work/tokens.csv" \
    --authorization-mode AlwaysAllow --endpoint-reconciler-type none \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$work/sa.key" --service-account-signing-key-file "$work/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 >"$work/apiserver.log" 2>&1 &
  pids+=($!)

  printf '%s\n' \
    "apiVersion: v1" "kind: Config" \
    "clusters:" "  - name: k8s-check" "    cluster:" \
    "      server: https://127.0.0.1:$api_port" "      insecure-skip-tls-verify: true" \
    "users:" "  - name: k8s-check" "    user:" "      token: $token" \
    "contexts:" "  - name: k8s-check" "    context: {cluster: k8s-check, user: k8s-check}" \
    "current-context: k8s-check" > "$work/kubeconfig"
  export KUBECONFIG="$work/kubeconfig"

  start=$(date +%s)
  until "$KUBECTL" get --raw /readyz >/dev/null 2>&1; do
    for p in "${pids[@]}"; do
      kill -0 "$p" 2>/dev/null || { tail -n 30 "$work"/*.log >&2; fail "etcd or kube-apiserver exited"; }
    done
    [ $(( $(date +%s) - start )) -lt 120 ] || { tail -n 30 "$work/apiserver.log" >&2; fail "kube-apiserver not ready in 120 s"; }
    sleep 0.5
  done
  log "kube-apiserver ready in $(( $(date +%s) - start ))s ($("$KUBECTL" version -o json \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])'))"
}
