-- finance-notifier (issue #16 §4, examples/finance-notifier): a service in
-- another language that reads bookkeeping balances with a client-credentials
-- token (audience bookkeeping, scope bookkeeping:read). Like the other
-- service clients it gets no secret here: an administrator issues one
-- (POST /admin/clients/finance-notifier/secret) for the service's secret
-- store (key FINANCE_NOTIFIER_CLIENT_SECRET of `platform-secrets`).

INSERT INTO clients (client_id, name, grant_types, allowed_scopes, allowed_audiences)
VALUES ('finance-notifier', 'finance-notifier example service (Python)',
        ARRAY['client_credentials'],
        ARRAY['bookkeeping:read'],
        ARRAY['bookkeeping'])
ON CONFLICT (client_id) DO NOTHING;
