#!/usr/bin/env bash
# Builds/installs the pinned tools that prove deploy/ here (`make k8s-check`):
#   kube-apiserver + etcd   from tools/kubernetes and tools/etcd (wrapper modules)
#   kustomize, helm, kubeconform, actionlint   with `go install pkg@version`
#   keda operator           from tools/keda (wrapper module), for make k8s-keda-check
#   cargo-deny              with `cargo install --locked` (make deny)
# Everything lands under ~/.cache/lisasports-platform/k8s/<tool>/<version>/,
# so a pin change builds next to the old one and nothing is rebuilt when present.
# Long builds print a heartbeat (packages compiled, elapsed time, what they wait for).
#
# Usage: scripts/install-k8s-tools.sh [all|apiserver|etcd|cli|keda|cargo-deny|print-env]
#   print-env prints shell assignments (KUBE_APISERVER=... etc.) for other scripts.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${LISASPORTS_K8S_CACHE:-$HOME/.cache/lisasports-platform/k8s}"

# Pins. The Go wrapper modules carry the versions of what they build; the
# go-installed CLIs are pinned here (nothing else restates them).
# mod_version <go.mod> <module>: the version the wrapper requires.
mod_version() {
  [ -f "$1" ] || return 0
  awk -v m="$2" '$1=="require" && $2==m {print $3; exit} $1==m && $2 ~ /^v/ {print $2; exit}' "$1"
}
k8s_version="$(mod_version "$here/tools/kubernetes/go.mod" k8s.io/kubernetes)"
etcd_version="$(mod_version "$here/tools/etcd/go.mod" go.etcd.io/etcd/server/v3)"
keda_version="$(mod_version "$here/tools/keda/go.mod" github.com/kedacore/keda/v2)"
KUSTOMIZE_VERSION=v5.7.1
HELM_VERSION=v4.3.2
KUBECONFORM_VERSION=v0.8.0
ACTIONLINT_VERSION=v1.7.12
CARGO_DENY_VERSION=0.20.2

log() { printf '[install-k8s-tools] %s\n' "$*" >&2; }

export GOFLAGS="${GOFLAGS:--buildvcs=false}"
export CGO_ENABLED=0

# shellcheck source=scripts/lib/progress.sh
. "$here/scripts/lib/progress.sh"
# go_build_progress <label> <logfile> <cmd...>: a Go or cargo build with
# -v output in <logfile> and a progress line every 20 s (scripts/lib/progress.sh).
go_build_progress() {
  local label="$1" start; start=$(date +%s)
  run_with_progress "$@"
  log "$label built in $(( $(date +%s) - start ))s"
}

build_apiserver() {
  local dir="$cache/kubernetes/$k8s_version"
  if [ -x "$dir/kube-apiserver" ] && "$dir/kube-apiserver" --version 2>/dev/null | grep -q "$k8s_version"; then
    log "kube-apiserver $k8s_version already in $dir"; return 0
  fi
  mkdir -p "$dir"
  log "building kube-apiserver $k8s_version from the Go module proxy (cold: ~12-25 min on 2 cores; cached afterwards)"
  go_build_progress "kube-apiserver $k8s_version" "$dir/build.log" \
    bash -c "cd '$here/tools/kubernetes' && go build -v -trimpath \
      -ldflags '-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$k8s_version" | cut -d. -f2)' \
      -o '$dir/kube-apiserver.tmp' k8s.io/kubernetes/cmd/kube-apiserver"
  mv -f "$dir/kube-apiserver.tmp" "$dir/kube-apiserver"
}

build_etcd() {
  local dir="$cache/etcd/$etcd_version"
  if [ -x "$dir/etcd" ] && "$dir/etcd" --version 2>/dev/null | grep -q "${etcd_version#v}"; then
    log "etcd $etcd_version already in $dir"; return 0
  fi
  mkdir -p "$dir"
  log "building etcd $etcd_version from the Go module proxy (cold: ~1-3 min)"
  go_build_progress "etcd $etcd_version" "$dir/build.log" \
    bash -c "cd '$here/tools/etcd' && go build -v -trimpath -ldflags '-s -w' \
      -o '$dir/etcd.tmp' go.etcd.io/etcd/server/v3"
  mv -f "$dir/etcd.tmp" "$dir/etcd"
}

# go_install <name> <pkg> <version> <version-check-args...>
go_install() {
  local name="$1" pkg="$2" version="$3"
  local dir="$cache/$name/$version"
  if [ -x "$dir/$name" ]; then log "$name $version already in $dir"; return 0; fi
  mkdir -p "$dir"
  log "installing $name $version (go install $pkg@$version)"
  go_build_progress "$name $version" "$dir/build.log" \
    env GOBIN="$dir" go install -v -trimpath -ldflags "-s -w $4" "$pkg@$version"
}

install_cli() {
  go_install kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION" \
    "-X sigs.k8s.io/kustomize/api/provenance.version=$KUSTOMIZE_VERSION"
  go_install helm helm.sh/helm/v4/cmd/helm "$HELM_VERSION" \
    "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
  go_install kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION" ""
  go_install actionlint github.com/rhysd/actionlint/cmd/actionlint "$ACTIONLINT_VERSION" \
    "-X github.com/rhysd/actionlint.version=$ACTIONLINT_VERSION"
}

build_keda() {
  [ -n "$keda_version" ] || { log "tools/keda/go.mod missing; KEDA operator not built"; return 1; }
  local dir="$cache/keda/$keda_version"
  if [ -x "$dir/keda-operator" ]; then log "keda-operator $keda_version already in $dir"; return 0; fi
  mkdir -p "$dir"
  log "building keda-operator $keda_version from the Go module proxy (cold: ~10+ min)"
  go_build_progress "keda-operator $keda_version" "$dir/build.log" \
    bash -c "cd '$here/tools/keda' && go build -v -trimpath -ldflags '-s -w -X github.com/kedacore/keda/v2/version.Version=$keda_version' \
      -o '$dir/keda-operator.tmp' github.com/kedacore/keda/v2/cmd/operator"
  mv -f "$dir/keda-operator.tmp" "$dir/keda-operator"
}

# cargo-deny (make deny): crates.io, built with the machine's Rust.
install_cargo_deny() {
  local dir="$cache/cargo-deny/$CARGO_DENY_VERSION"
  if [ -x "$dir/bin/cargo-deny" ]; then log "cargo-deny $CARGO_DENY_VERSION already in $dir"; return 0; fi
  mkdir -p "$dir"
  log "installing cargo-deny $CARGO_DENY_VERSION (cargo install --locked; cold: ~5-10 min)"
  # cargo-deny's release profile is fat LTO with one codegen unit: its last
  # crate alone compiled for over 5 of the 15 minutes of a cold install here
  # (898 s in all, loaded machine). A policy check of one workspace does not
  # need that: opt-level 1, no LTO, parallel codegen.
  go_build_progress "cargo-deny $CARGO_DENY_VERSION" "$dir/build.log" \
    env -u CARGO_TARGET_DIR CARGO_INCREMENTAL=0 \
      CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=64 \
      CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
      cargo install --locked --root "$dir" --version "$CARGO_DENY_VERSION" cargo-deny
}

print_env() {
  cat <<EOF
KUBE_APISERVER=$cache/kubernetes/$k8s_version/kube-apiserver
ETCD=$cache/etcd/$etcd_version/etcd
KUSTOMIZE=$cache/kustomize/$KUSTOMIZE_VERSION/kustomize
HELM=$cache/helm/$HELM_VERSION/helm
KUBECONFORM=$cache/kubeconform/$KUBECONFORM_VERSION/kubeconform
ACTIONLINT=$cache/actionlint/$ACTIONLINT_VERSION/actionlint
KEDA_OPERATOR=$cache/keda/$keda_version/keda-operator
K8S_VERSION=$k8s_version
CARGO_DENY=$cache/cargo-deny/$CARGO_DENY_VERSION/bin/cargo-deny
EOF
}

case "${1:-all}" in
  apiserver) build_apiserver ;;
  etcd) build_etcd ;;
  cli) install_cli ;;
  keda) build_keda ;;
  cargo-deny) install_cargo_deny ;;
  print-env) print_env ;;
  all) build_etcd; install_cli; build_apiserver ;;
  *) echo "usage: $0 [all|apiserver|etcd|cli|keda|cargo-deny|print-env]" >&2; exit 2 ;;
esac
