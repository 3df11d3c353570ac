#!/usr/bin/env bash
# The SMTP catcher (sandboxes/smtp-catcher): mail sent through communication's SMTP
# binding (bindings.smtp-mime) lands here and can be read over HTTP. See docs/adr/0014.
#
#   scripts/smtp-catcher.sh up       install what is missing, start it, wait until it answers
#   scripts/smtp-catcher.sh down     stop the instance `up` started
#   scripts/smtp-catcher.sh status
#   scripts/smtp-catcher.sh python   install what is missing, print the interpreter to run it with
#                                    (test-support starts instances of its own on free ports)
#
# Ports: SMTP_CATCHER_SMTP_PORT (2525), SMTP_CATCHER_HTTP_PORT (8025).
# Installs into ~/.cache/lisasports-platform/smtp-catcher-venv (pinned
# requirements; reinstalled when requirements.txt changes).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
app_dir="$here/sandboxes/smtp-catcher"
cache_dir="${LISASPORTS_CACHE_DIR:-$HOME/.cache/lisasports-platform}"
venv="$cache_dir/smtp-catcher-venv"
run_dir="${PLATFORM_RUN_DIR:-$here/.run}"
pidfile="$run_dir/smtp-catcher.pid"
log_file="$run_dir/logs/smtp-catcher.log"
export SMTP_CATCHER_SMTP_PORT="${SMTP_CATCHER_SMTP_PORT:-2525}"
export SMTP_CATCHER_HTTP_PORT="${SMTP_CATCHER_HTTP_PORT:-8025}"
# Delivery events for every accepted mail, as a mail provider's webhook
# (communication's receipts route; same local secret as the notification sandbox).
export SMTP_CATCHER_RECEIPT_URL="${SMTP_CATCHER_RECEIPT_URL:-http://127.0.0.1:8004/v1/providers/email/receipts}"
export SMTP_CATCHER_RECEIPT_SECRET="${SMTP_CATCHER_RECEIPT_SECRET:-notify_local_sandbox}"

log() { printf '[smtp-catcher] %s\n' "$*" >&2; }
# Seconds the catcher has to answer its health endpoint.
ready_timeout="${SMTP_CATCHER_READY_TIMEOUT:-30}"
# shellcheck source=scripts/lib/processes.sh
. "$here/scripts/lib/processes.sh"
# shellcheck source=scripts/lib/readiness.sh
. "$here/scripts/lib/readiness.sh"

make_venv() {
  local python="${SMTP_CATCHER_PYTHON:-python3}"
  rm -rf "$venv"
  if "$python" -m venv "$venv" >/dev/null 2>&1; then return 0; fi
  # Debian ships venv/ensurepip apart from python3.
  log "installing python3-venv"
  rm -rf "$venv"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  /usr/bin/python3 -m venv "$venv"
}

# Creates or refreshes the virtualenv; safe to run from several tests at once.
install() {
  mkdir -p "$cache_dir"
  local want
  want="$(sha256sum "$app_dir/requirements.txt" | cut -d' ' -f1)"
  exec 9>"$cache_dir/smtp-catcher.lock"
  flock 9
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" = "$want" ]; then
    flock -u 9; return 0
  fi
  log "installing into $venv"
  make_venv
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    -r "$app_dir/requirements.txt" >&2
  echo "$want" > "$venv/.requirements.sha256"
  flock -u 9
}

catcher_alive() { alive "$pidfile" smtp_catcher.py; }

healthy() { http_ok "http://127.0.0.1:$SMTP_CATCHER_HTTP_PORT/healthz"; }

up() {
  install
  if catcher_alive; then log "already running (pid $(cat "$pidfile"))"; return 0; fi
  if healthy; then
    log "port $SMTP_CATCHER_HTTP_PORT already answers, but not for a catcher this script started"; return 1
  fi
  mkdir -p "$run_dir/logs"
  setsid "$venv/bin/python" "$app_dir/smtp_catcher.py" >>"$log_file" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  # The health endpoint answers once the SMTP listener is bound too.
  if wait_until "the catcher at http://127.0.0.1:$SMTP_CATCHER_HTTP_PORT/healthz" "$ready_timeout" "$!" healthy; then
    log "serving: SMTP 127.0.0.1:$SMTP_CATCHER_SMTP_PORT, HTTP http://127.0.0.1:$SMTP_CATCHER_HTTP_PORT"
    return 0
  fi
  log "did not start; last lines of $log_file:"; tail -n 20 "$log_file" >&2; return 1
}

down() {
  stop_process "$pidfile" "the catcher" smtp_catcher.py
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) if catcher_alive && healthy; then echo "smtp-catcher: up"; else echo "smtp-catcher: down"; fi ;;
  python) install; echo "$venv/bin/python" ;;
  *) echo "usage: $0 up|down|status|python" >&2; exit 2 ;;
esac
