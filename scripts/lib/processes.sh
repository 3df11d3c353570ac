# shellcheck shell=bash
# Sourced by the project's scripts (stack.sh, pluggable.sh, smtp-catcher.sh,
# sandboxes/run.sh): processes they start and stop through pid files. The
# caller defines `log`.
#
# A pid file is trusted only while its process is still the program we
# started (after a reboot the number may belong to something else).

# alive <pidfile> <expected command-line substring>
alive() {
  local pid
  [ -f "$1" ] || return 1
  pid="$(cat "$1")"
  kill -0 "$pid" 2>/dev/null && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"
}

# stop_process <pidfile> <name> <expected command-line substring> [grace in tenths of a second, 50]
# SIGTERM, then SIGKILL after the grace; removes the pid file.
stop_process() {
  local pidfile="$1" name="$2" expected="$3" tenths="${4:-50}" pid
  [ -f "$pidfile" ] || return 0
  if alive "$pidfile" "$expected"; then
    pid="$(cat "$pidfile")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq "$tenths"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
      log "$name did not stop on SIGTERM within $((tenths / 10)) s; killed"
    else
      log "$name stopped"
    fi
  fi
  rm -f "$pidfile"
}
