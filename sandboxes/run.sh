#!/usr/bin/env bash
# The provider sandboxes of the local stack, as processes (called by
# scripts/stack.sh; each sandbox's README says what it plays):
#
#   sandboxes/run.sh up <cargo target dir>   start psp-sandbox (8010), notify-sandbox (8020)
#                                            and the SMTP catcher (2525/8025); wait until they answer
#   sandboxes/run.sh down                    stop what `up` started
#   sandboxes/run.sh status
#
# The binaries are the workspace's debug builds (`cargo build --bins` builds
# them with the services). Logs: .run/logs/<sandbox>.log.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run_dir="${PLATFORM_RUN_DIR:-$here/.run}"
log_dir="$run_dir/logs"
export PSP_PORT="${PSP_PORT:-8010}"
export PSP_WEBHOOK_URL="${PSP_WEBHOOK_URL:-http://127.0.0.1:8002/v1/webhooks/psp}"
export NOTIFY_PORT="${NOTIFY_PORT:-8020}"

log() { printf '[sandboxes] %s\n' "$*" >&2; }

# Seconds a sandbox has to answer its health endpoint.
ready_timeout="${SANDBOX_READY_TIMEOUT:-30}"

# shellcheck source=scripts/lib/processes.sh
. "$here/scripts/lib/processes.sh"
# shellcheck source=scripts/lib/readiness.sh
. "$here/scripts/lib/readiness.sh"

start() { # name binary port
  local name="$1" binary="$2" port="$3"
  if alive "$run_dir/$name.pid" "$name"; then log "$name already running"; return 0; fi
  if http_ok "http://127.0.0.1:$port/healthz"; then
    log "port $port already answers, but not for a $name this script started"; return 1
  fi
  [ -x "$binary" ] || { log "$binary is missing (cargo build --bins)"; return 1; }
  setsid "$binary" >>"$log_dir/$name.log" 2>&1 < /dev/null &
  echo $! > "$run_dir/$name.pid"
  wait_until "$name at http://127.0.0.1:$port/healthz" "$ready_timeout" "$!" http_ok "http://127.0.0.1:$port/healthz" && return 0
  log "$name did not start; last lines of $log_dir/$name.log:"; tail -n 20 "$log_dir/$name.log" >&2; return 1
}

stop() { # name
  stop_process "$run_dir/$1.pid" "$1" "$1"
}

case "${1:-}" in
  up)
    target_dir="${2:?usage: $0 up <cargo target dir>}"
    mkdir -p "$log_dir"
    start psp-sandbox "$target_dir/debug/psp-sandbox" "$PSP_PORT"
    start notify-sandbox "$target_dir/debug/notify-sandbox" "$NOTIFY_PORT"
    PLATFORM_RUN_DIR="$run_dir" bash "$here/scripts/smtp-catcher.sh" up
    ;;
  down)
    stop psp-sandbox
    stop notify-sandbox
    PLATFORM_RUN_DIR="$run_dir" bash "$here/scripts/smtp-catcher.sh" down
    ;;
  status)
    for s in psp-sandbox:"$PSP_PORT" notify-sandbox:"$NOTIFY_PORT"; do
      if http_ok "http://127.0.0.1:${s#*:}/healthz"; then echo "${s%%:*}: up"; else echo "${s%%:*}: down"; fi
    done
    PLATFORM_RUN_DIR="$run_dir" bash "$here/scripts/smtp-catcher.sh" status
    ;;
  *) echo "usage: $0 up <cargo target dir>|down|status" >&2; exit 2 ;;
esac
