-- One role and one database per service that owns SQL data; a role owns only
-- its own database. Idempotent. Used by scripts/infra.sh and by the
-- PostgreSQL container of docker-compose.yml.
-- Passwords are for local development only; real environments create roles
-- with secrets from their secret store.
-- CREATEDB lets the test harness create a database per test for the role.
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', svc, svc)
  FROM unnest(ARRAY['auth', 'bookings', 'bookkeeping', 'communication', 'payments']) AS svc
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = svc)\gexec

SELECT format('CREATE DATABASE %I OWNER %I', svc, svc)
  FROM unnest(ARRAY['auth', 'bookings', 'bookkeeping', 'communication', 'payments']) AS svc
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = svc)\gexec

-- Converge roles created before CREATEDB was granted.
SELECT format('ALTER ROLE %I CREATEDB', svc)
  FROM unnest(ARRAY['auth', 'bookings', 'bookkeeping', 'communication', 'payments']) AS svc\gexec
