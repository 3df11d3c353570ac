-- The seed granted `communication:send`, a scope no service requires:
-- communication's routes require `communication:read` or
-- `communication:write` (services/communication/src/routes/mod.rs). Sending
-- is a write, so `communication:send` becomes `communication:write`
-- wherever a scope is stored (a value that held both keeps one; scopes are
-- a set, sorted here).

UPDATE roles
SET scopes = ARRAY(
    SELECT DISTINCT s
    FROM unnest(array_replace(scopes, 'communication:send', 'communication:write')) AS s
    ORDER BY s
)
WHERE 'communication:send' = ANY (scopes);

UPDATE clients
SET allowed_scopes = ARRAY(
    SELECT DISTINCT s
    FROM unnest(array_replace(allowed_scopes, 'communication:send', 'communication:write')) AS s
    ORDER BY s
)
WHERE 'communication:send' = ANY (allowed_scopes);

-- A consent (and so the refresh tokens of its family) keeps its meaning;
-- its scope is one space-separated string.
UPDATE grants
SET scope = array_to_string(ARRAY(
    SELECT DISTINCT s
    FROM unnest(array_replace(string_to_array(scope, ' '), 'communication:send', 'communication:write')) AS s
    ORDER BY s
), ' ')
WHERE 'communication:send' = ANY (string_to_array(scope, ' '));
