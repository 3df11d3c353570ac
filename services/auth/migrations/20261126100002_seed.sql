-- The platform's own roles and service clients. Service clients get no
-- secret here: an administrator issues one (POST /admin/clients/{id}/secret),
-- which is shown once and handed to the service through its secret store.

INSERT INTO roles (name, description, scopes) VALUES
    ('auth-admin', 'Manage clients, roles, users and keys', ARRAY['auth:admin']),
    ('payments-reader', 'Read payments', ARRAY['payments:read']),
    ('payments-operator', 'Create and read payments', ARRAY['payments:read', 'payments:write']),
    ('bookkeeper', 'Read and post to the ledger', ARRAY['bookkeeping:read', 'bookkeeping:write']),
    ('auditor', 'Read the ledger and payments', ARRAY['bookkeeping:read', 'payments:read']),
    ('communication-sender', 'Send messages', ARRAY['communication:send']);

INSERT INTO clients (client_id, name, grant_types, allowed_scopes, allowed_audiences) VALUES
    ('payments', 'payments service',
        ARRAY['client_credentials'],
        ARRAY['bookkeeping:write', 'communication:send'],
        ARRAY['bookkeeping', 'communication']),
    ('bookkeeping', 'bookkeeping service',
        ARRAY['client_credentials'],
        ARRAY['payments:read'],
        ARRAY['payments']),
    ('communication', 'communication service',
        ARRAY['client_credentials'],
        ARRAY['payments:read'],
        ARRAY['payments']);
