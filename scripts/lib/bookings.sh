#!/usr/bin/env bash
# bookings' local-stack hook (called once by scripts/stack.sh after every
# service is ready): gives auth's `bookings` client the local-only secret
# that dapr.yaml hands to bookings (APP__PAYMENTS__CLIENT_SECRET), so that
# bookings can get its client-credentials token for payments. Only where the
# client has no secret yet (an operator's secret is never replaced), and only
# on the local database with the development role (scripts/sql/service-databases.sql).
# Elsewhere an administrator issues the secret: POST /admin/clients/bookings/secret.
set -euo pipefail
secret="${BOOKINGS_LOCAL_CLIENT_SECRET:-local-only-bookings-secret}"
PGPASSWORD=auth psql -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U auth -d auth -v secret="$secret" <<'SQL'
UPDATE clients SET secret_digest = sha256(convert_to(:'secret', 'UTF8'))
 WHERE client_id = 'bookings' AND secret_digest IS NULL;
SQL
echo "[bookings] local client secret of auth's bookings client in place"
