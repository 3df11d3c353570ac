-- The parking lots' operator APIs (docs/adr/0029): bookkeeping and
-- communication require `<service>:admin` to list and re-drive parked dead
-- letters (services/*/src/routes/mod.rs). Granted like the seed grants the
-- other scopes: a role for people, and a client without a secret for the
-- operators' tooling (`make redrive`), whose secret an administrator issues
-- (POST /admin/clients/operations/secret).

INSERT INTO roles (name, description, scopes) VALUES
    ('dead-letter-operator', 'Inspect and re-drive parked dead letters',
        ARRAY['bookkeeping:admin', 'communication:admin']);

INSERT INTO clients (client_id, name, grant_types, allowed_scopes, allowed_audiences) VALUES
    ('operations', 'operators'' tooling (make redrive)',
        ARRAY['client_credentials'],
        ARRAY['bookkeeping:admin', 'communication:admin'],
        ARRAY['bookkeeping', 'communication']);

-- An installation whose bootstrap admin exists already may re-drive too.
UPDATE clients
SET allowed_scopes = ARRAY(
        SELECT DISTINCT s FROM unnest(allowed_scopes || ARRAY['bookkeeping:admin', 'communication:admin']) AS s
        ORDER BY s),
    allowed_audiences = ARRAY(
        SELECT DISTINCT a FROM unnest(allowed_audiences || ARRAY['bookkeeping', 'communication']) AS a
        ORDER BY a)
WHERE client_id = 'platform-admin';
