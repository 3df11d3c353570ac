# shellcheck shell=bash
# Sourced by the project's scripts (stack.sh, infra.sh, pluggable.sh,
# smtp-catcher.sh, sandboxes/run.sh): waiting until something started in the
# background is ready. The caller defines `log`.
#
# Readiness is the thing itself answering (a port, a socket, a health
# endpoint), probed until a deadline. A process's command line is not a
# readiness signal: right after `setsid cmd &` the child may not have exec'd
# yet and still shows the script's own command line, so a check on it sees a
# live process as dead (`make up` failed about one run in five that way).

# Needs `exited` from processes.sh.
# shellcheck source=scripts/lib/processes.sh
. "$(dirname "${BASH_SOURCE[0]}")/processes.sh"

# Milliseconds since the epoch.
now_ms() { date +%s%3N; }

# http_ok <url>: the URL answers 2xx within 2 s.
http_ok() { curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; }

# socket_answers <path>: something accepts connections on the Unix socket (a
# socket file alone may be left over from a process that died).
socket_answers() {
  [ -S "$1" ] && python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(2)
s.connect(sys.argv[1])' "$1" 2>/dev/null
}

# wait_until <what> <timeout in s> <pid or -> <probe> [args...]
# Runs the probe every 0.1 s until it succeeds or the deadline passes, and says
# which. <what> names what is waited for ("psp-sandbox: http://…/healthz").
# With a pid, gives up early once that process has exited: it cannot become
# ready any more.
wait_until() {
  local what="$1" timeout="$2" pid="$3" started deadline
  shift 3
  started="$(now_ms)"
  deadline=$((started + timeout * 1000))
  while :; do
    if "$@"; then
      log "ready: $what (after $(($(now_ms) - started)) ms)"
      return 0
    fi
    if [ "$pid" != - ] && exited "$pid"; then
      log "not ready: $what; its process (pid $pid) exited after $(($(now_ms) - started)) ms"
      return 1
    fi
    if [ "$(now_ms)" -ge "$deadline" ]; then
      log "not ready: $what; no answer within ${timeout} s"
      return 1
    fi
    sleep 0.1
  done
}
