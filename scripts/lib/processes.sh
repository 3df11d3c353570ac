# shellcheck shell=bash
# Sourced by the project's scripts (stack.sh, pluggable.sh, smtp-catcher.sh,
# sandboxes/run.sh): processes they start and stop through pid files. The
# caller defines `log`.
#
# A pid file is trusted only while its process is still the program we
# started (after a reboot the number may belong to something else).

# exited <pid>: the process is gone, or a zombie (it exited and its parent has
# not reaped it yet: the stack's processes are reparented to PID 1, which may
# reap late, and `kill -0` succeeds on a zombie). A process that has not
# exec'd yet is not exited.
exited() {
  local state
  kill -0 "$1" 2>/dev/null || return 0
  # The state follows the command name, which is in parentheses and may
  # itself hold spaces or parentheses.
  state="$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null)" || return 0
  [ "$state" = Z ]
}

# alive <pidfile> <expected command-line substring>: for pid files of
# processes started earlier (is this still ours?), not for readiness.
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
    for _ in $(seq "$tenths"); do exited "$pid" && break; sleep 0.1; done
    if ! exited "$pid"; then
      kill -KILL "$pid" 2>/dev/null || true
      log "$name did not stop on SIGTERM within $((tenths / 10)) s; killed"
    else
      log "$name stopped"
    fi
  fi
  rm -f "$pidfile"
}
