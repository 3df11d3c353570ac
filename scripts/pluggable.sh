#!/usr/bin/env bash
# Dapr pluggable components of the local stack, as processes (called by
# scripts/stack.sh before the sidecars start: daprd discovers pluggable
# components once, at start-up, from the sockets in
# DAPR_COMPONENTS_SOCKETS_FOLDER).
#
#   scripts/pluggable.sh up <cargo target dir>   start smtp-mime-binding (socket smtp-mime.sock,
#                                                metrics http://127.0.0.1:9105/metrics)
#   scripts/pluggable.sh down                    stop what `up` started
#   scripts/pluggable.sh status
#
# Socket folder: $DAPR_COMPONENTS_SOCKETS_FOLDER, default .run/sockets (the
# same variable tells the sidecars where to look). Logs: .run/logs/<name>.log.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run_dir="${PLATFORM_RUN_DIR:-$here/.run}"
log_dir="$run_dir/logs"
export DAPR_COMPONENTS_SOCKETS_FOLDER="${DAPR_COMPONENTS_SOCKETS_FOLDER:-$run_dir/sockets}"
# name:socket (the socket's name is the component type: bindings.<socket>)
components=(smtp-mime-binding:smtp-mime)

log() { printf '[pluggable] %s\n' "$*" >&2; }

# Seconds a component has to accept connections on its socket.
ready_timeout="${PLUGGABLE_READY_TIMEOUT:-30}"

# shellcheck source=scripts/lib/processes.sh
. "$here/scripts/lib/processes.sh"
# shellcheck source=scripts/lib/readiness.sh
. "$here/scripts/lib/readiness.sh"

up() {
  local target_dir="$1" name socket path
  mkdir -p "$log_dir" "$DAPR_COMPONENTS_SOCKETS_FOLDER"
  for c in "${components[@]}"; do
    name="${c%%:*}"; socket="${c#*:}"
    path="$DAPR_COMPONENTS_SOCKETS_FOLDER/$socket.sock"
    # A Unix socket path must fit in 108 bytes.
    if [ "${#path}" -ge 104 ]; then
      log "socket path $path is too long for a Unix socket; set DAPR_COMPONENTS_SOCKETS_FOLDER to a shorter folder"; return 1
    fi
    if alive "$run_dir/$name.pid" "$name"; then log "$name already running"; continue; fi
    [ -x "$target_dir/debug/$name" ] || { log "$target_dir/debug/$name is missing (scripts/build-services.sh)"; return 1; }
    # The binary replaces a stale socket itself and refuses a live one.
    if socket_answers "$path"; then log "another process serves $path"; return 1; fi
    SMTP_MIME_SOCKET_NAME="$socket" SMTP_MIME_METRICS_ADDR="${SMTP_MIME_METRICS_ADDR:-127.0.0.1:9105}" \
      setsid "$target_dir/debug/$name" >>"$log_dir/$name.log" 2>&1 < /dev/null &
    echo $! > "$run_dir/$name.pid"
    if ! wait_until "$name accepting connections on $path" "$ready_timeout" "$!" socket_answers "$path"; then
      log "$name did not start; last lines of $log_dir/$name.log:"; tail -n 20 "$log_dir/$name.log" >&2; return 1
    fi
  done
}

down() {
  # The binding finishes in-flight sends on SIGTERM (up to its 20 s grace).
  for c in "${components[@]}"; do
    stop_process "$run_dir/${c%%:*}.pid" "${c%%:*}" "${c%%:*}" 250
  done
}

status() {
  local name socket
  for c in "${components[@]}"; do
    name="${c%%:*}"; socket="${c#*:}"
    if alive "$run_dir/$name.pid" "$name" && socket_answers "$DAPR_COMPONENTS_SOCKETS_FOLDER/$socket.sock"; then echo "$name: up"; else echo "$name: down"; fi
  done
}

case "${1:-}" in
  up) up "${2:?usage: $0 up <cargo target dir>}" ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up <cargo target dir>|down|status" >&2; exit 2 ;;
esac
