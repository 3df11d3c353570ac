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

# shellcheck source=scripts/lib/processes.sh
. "$here/scripts/lib/processes.sh"

# Something accepts connections on the Unix socket $1 (a socket file alone
# may be left over from a process that died).
socket_answers() {
  [ -S "$1" ] && python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' "$1" 2>/dev/null
}

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
    [ -x "$target_dir/debug/$name" ] || { log "$target_dir/debug/$name is missing (cargo build --bins)"; return 1; }
    # The binary replaces a stale socket itself and refuses a live one.
    if socket_answers "$path"; then log "another process serves $path"; return 1; fi
    SMTP_MIME_SOCKET_NAME="$socket" SMTP_MIME_METRICS_ADDR="${SMTP_MIME_METRICS_ADDR:-127.0.0.1:9105}" \
      setsid "$target_dir/debug/$name" >>"$log_dir/$name.log" 2>&1 < /dev/null &
    echo $! > "$run_dir/$name.pid"
    for _ in $(seq 100); do
      socket_answers "$path" && { log "$name ready on $path"; break; }
      alive "$run_dir/$name.pid" "$name" || break
      sleep 0.1
    done
    socket_answers "$path" || { log "$name did not start; last lines of $log_dir/$name.log:"; tail -n 20 "$log_dir/$name.log" >&2; return 1; }
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
