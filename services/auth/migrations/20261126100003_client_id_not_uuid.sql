-- A user's `sub` is their UUID and a client-credentials token's `sub` is the
-- client id: a UUID-shaped client id could name a user. Keep the namespaces
-- disjoint (the admin API refuses such ids first, with a clearer message).
ALTER TABLE clients ADD CONSTRAINT clients_client_id_not_uuid
    CHECK (replace(client_id, '-', '') !~ '^[0-9a-f]{32}$');
