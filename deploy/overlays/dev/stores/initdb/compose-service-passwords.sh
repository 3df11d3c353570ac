#!/usr/bin/env bash
# Compose only (docker-entrypoint-initdb.d, after 10-service-databases.sql):
# the service roles get the passwords the operator set, never the
# development ones `make up` uses. psql's :'var' quoting keeps a password a
# literal whatever it contains.
set -euo pipefail
for svc in auth payments bookkeeping communication bookings; do
  var="$(tr '[:lower:]' '[:upper:]' <<<"$svc")_DB_PASSWORD"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" -v role="$svc" -v pw="${!var}" <<'SQL'
ALTER ROLE :"role" PASSWORD :'pw';
SQL
done
