# Sourced: run_with_progress <label> <logfile> <command...>
# Runs a long, otherwise silent step (cargo build, go build -v, cargo install)
# with its output in <logfile> and prints every 20 s what it is doing: how
# many units (crates, Go packages) it has compiled, the one it is on, and for
# how long it has been running. On failure, prints the log's last lines.
# Used by scripts/stack.sh, scripts/install-dapr.sh, scripts/install-k8s-tools.sh.
# shellcheck shell=bash

run_with_progress() {
  local label="$1" logf="$2"; shift 2
  local start pid n last
  start=$(date +%s)
  mkdir -p "$(dirname "$logf")"
  printf '[progress] %s: started (log: %s)\n' "$label" "$logf" >&2
  "$@" >"$logf" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null || break
    # cargo: "Compiling x v1"; go build -v: one package path per line.
    n=$(grep -cE '^\s*(Compiling|Checking) |^[a-z0-9.-]+\.[a-z]+/|^[a-z]+(/[A-Za-z0-9_.-]+)*$' "$logf" 2>/dev/null || true)
    last=$(grep -vE '^\s*$' "$logf" 2>/dev/null | tail -n1 | sed 's/^ *//' | cut -c1-100)
    if grep -qE '^\s*(Downloading|Downloaded|Updating)|^go: downloading' "$logf" && [ "${n:-0}" -eq 0 ]; then
      printf '[progress] %s: downloading dependencies (%ss; %s)\n' "$label" "$(( $(date +%s) - start ))" "$last" >&2
    else
      printf '[progress] %s: %s units compiled, %ss elapsed; now: %s\n' \
        "$label" "${n:-0}" "$(( $(date +%s) - start ))" "${last:-linking}" >&2
    fi
  done
  if ! wait "$pid"; then
    printf '[progress] %s FAILED after %ss; last lines of %s:\n' "$label" "$(( $(date +%s) - start ))" "$logf" >&2
    tail -n 30 "$logf" >&2
    return 1
  fi
  printf '[progress] %s: done in %ss\n' "$label" "$(( $(date +%s) - start ))" >&2
}
