#!/usr/bin/env bash
# Installs (Debian packages) and starts the local infrastructure on loopback:
# Redis (Dapr state store + pub/sub) and PostgreSQL (one database and role per
# service that owns SQL data). Idempotent; a server that is already answering
# is left alone, and only servers this script started are stopped by `stop`.
#
#   scripts/infra.sh up     install what is missing, start, create databases
#   scripts/infra.sh down   stop what `up` started
#   scripts/infra.sh status
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run_dir="${PLATFORM_RUN_DIR:-$here/.run}"
log_dir="$run_dir/logs"
redis_port="${REDIS_PORT:-6379}"
pg_port="${PGPORT:-5432}"
# The PostgreSQL major version: PG_VERSION, else the one installed, else the
# one Debian's `postgresql` package brings (15 on Debian 12, 17 on 13).
pg_version="${PG_VERSION:-}"

log() { printf '[infra] %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/readiness.sh
. "$here/scripts/lib/readiness.sh"
# Seconds Redis and PostgreSQL have to answer once started.
ready_timeout="${INFRA_READY_TIMEOUT:-30}"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=0
apt_install() { # packages...
  local need=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p"); done
  [ "${#need[@]}" -eq 0 ] && return 0
  if [ "$apt_updated" -eq 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  log "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

redis_up() { redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null | grep -q PONG; }
pg_up() { pg_isready -q -h 127.0.0.1 -p "$pg_port"; }

start_redis() {
  if redis_up; then log "redis already answering on 127.0.0.1:$redis_port (left alone)"; return; fi
  # The Debian package starts its own service where systemd runs; here we run
  # our own instance so that data and logs stay under .run/.
  mkdir -p "$run_dir/redis" "$log_dir"
  # appendfsync always: a write is on disk before Redis acknowledges it.
  # Redis holds the pub/sub streams, and once payments' relay (or any
  # outbox) has had a publish acknowledged it deletes its own copy, so an
  # acknowledged event must survive a crash of the machine (ADR 0030;
  # `everysec` could lose the last 1-2 s). An instance already running keeps
  # its settings until it is restarted: `redis-cli CONFIG GET appendfsync`.
  redis-server --bind 127.0.0.1 --port "$redis_port" --daemonize yes \
    --dir "$run_dir/redis" --appendonly yes --appendfsync always \
    --pidfile "$run_dir/redis/redis.pid" --logfile "$log_dir/redis.log" >/dev/null
  # --daemonize: the started process exits at once; the server is its child.
  wait_until "redis PING on 127.0.0.1:$redis_port" "$ready_timeout" - redis_up \
    || { log "redis did not start; see $log_dir/redis.log"; exit 1; }
  touch "$run_dir/redis/started-by-us"
  log "redis started on 127.0.0.1:$redis_port"
}

# PostgreSQL's connection budget (docs/reliability.md, "Connection budget"):
# a REPLICAS=2 stack and the integration tests running beside it peaked at
# 98 of Debian's default 100.
pg_max_connections=200
pg_settings() {
  local dir="/etc/postgresql/$pg_version/main/conf.d"
  [ -d "$dir" ] || return 0
  printf '%s\n' "# Written by scripts/infra.sh (docs/reliability.md, \"Connection budget\")." \
    "max_connections = $pg_max_connections" | as_root tee "$dir/50-lisasports.conf" >/dev/null
}

start_postgres() {
  if pg_up; then
    log "postgresql already answering on 127.0.0.1:$pg_port (left alone)"
    local now
    now="$(as_root runuser -u postgres -- psql -XAtq -p "$pg_port" -d postgres -c 'SHOW max_connections' 2>/dev/null || echo "?")"
    if [ "$now" != "?" ] && [ "$now" -lt "$pg_max_connections" ]; then
      pg_settings
      log "postgresql runs with max_connections=$now (< $pg_max_connections, docs/reliability.md): restart it to apply (pg_ctlcluster $pg_version main restart)"
    fi
  else
    if ! pg_lsclusters -h 2>/dev/null | awk '{print $1"/"$2}' | grep -qx "$pg_version/main"; then
      as_root pg_createcluster "$pg_version" main --port "$pg_port" >/dev/null
    fi
    pg_settings
    as_root pg_ctlcluster "$pg_version" main start
    wait_until "postgresql (pg_isready) on 127.0.0.1:$pg_port" "$ready_timeout" - pg_up \
      || { log "postgresql did not start; see /var/log/postgresql/"; exit 1; }
    mkdir -p "$run_dir/postgres" && touch "$run_dir/postgres/started-by-us"
    log "postgresql $pg_version started on 127.0.0.1:$pg_port"
  fi
  as_root runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -p "$pg_port" -d postgres \
    -f - < "$here/scripts/sql/service-databases.sql"
  log "service databases ready (scripts/sql/service-databases.sql)"
}

stop_redis() {
  [ -f "$run_dir/redis/started-by-us" ] || return 0
  redis-cli -h 127.0.0.1 -p "$redis_port" shutdown >/dev/null 2>&1 || true
  rm -f "$run_dir/redis/started-by-us"; log "redis stopped"
}

stop_postgres() {
  [ -f "$run_dir/postgres/started-by-us" ] || return 0
  as_root pg_ctlcluster "$pg_version" main stop -m fast || true
  rm -f "$run_dir/postgres/started-by-us"; log "postgresql stopped"
}

detect_pg_version() {
  [ -n "$pg_version" ] && return 0
  pg_version="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -n | tail -n 1)"
}

case "${1:-up}" in
  up)
    # curl and procps are used by scripts/stack.sh; python3 by install-dapr.sh.
    apt_install redis-server redis-tools postgresql postgresql-client-common curl procps python3
    detect_pg_version
    # The Debian package may start a system redis bound to 6379; that is fine,
    # it then counts as "already answering".
    start_redis
    start_postgres
    ;;
  down) detect_pg_version; stop_redis; stop_postgres ;;
  status)
    redis_up && echo "redis: up (127.0.0.1:$redis_port)" || echo "redis: down"
    pg_up && echo "postgresql: up (127.0.0.1:$pg_port)" || echo "postgresql: down" ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
