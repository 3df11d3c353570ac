-- A statement belongs to the OAuth client that requested it (ADR 0028):
-- only that client, or a token with bookkeeping:admin, reads or downloads
-- it. Statements requested before have none: admin only.
ALTER TABLE statements ADD COLUMN owner_client_id text;
