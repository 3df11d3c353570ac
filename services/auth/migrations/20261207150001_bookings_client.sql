-- bookings (issue #15): its service client creates, cancels and refunds
-- payments (client credentials, audience payments); administrators and
-- members get the bookings scopes through roles. Like the other service
-- clients it gets no secret here: an administrator issues one
-- (POST /admin/clients/bookings/secret) for bookings' secret store
-- (APP__PAYMENTS__CLIENT_SECRET).

INSERT INTO clients (client_id, name, grant_types, allowed_scopes, allowed_audiences)
VALUES ('bookings', 'bookings service',
        ARRAY['client_credentials'],
        ARRAY['payments:read', 'payments:write'],
        ARRAY['payments'])
ON CONFLICT (client_id) DO NOTHING;

INSERT INTO roles (name, description, scopes) VALUES
    ('bookings-admin', 'Manage offerings and cancel them for everyone', ARRAY['bookings:admin', 'bookings:read']),
    ('member', 'Book places and cancel own bookings', ARRAY['bookings:read', 'bookings:write'])
ON CONFLICT (name) DO NOTHING;
