-- auth's own database: keys, clients, RBAC, users, grants and their tokens.
-- Secrets are never stored: client secrets, codes and refresh tokens as
-- SHA-256 digests (high-entropy, server-generated: a fast hash suffices),
-- passwords as argon2id PHC strings, private keys sealed with the
-- key-encryption key (AES-256-GCM, the kid as associated data).

-- Signing keys. A key is published (in the JWKS) from publish_at, signs from
-- activate_at, stops signing at retire_at and leaves the JWKS once every
-- token it signed has expired (retire_at + the longest token lifetime).
CREATE TABLE signing_keys (
    kid                text PRIMARY KEY,
    alg                text NOT NULL CHECK (alg = 'ES256'),
    public_jwk         jsonb NOT NULL,
    private_key_sealed bytea NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    publish_at         timestamptz NOT NULL,
    activate_at        timestamptz NOT NULL,
    retire_at          timestamptz,
    CHECK (activate_at >= publish_at),
    CHECK (retire_at IS NULL OR retire_at >= activate_at)
);

CREATE TABLE roles (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{0,63}$'),
    description text NOT NULL DEFAULT '',
    scopes      text[] NOT NULL DEFAULT '{}'
);

CREATE TABLE clients (
    client_id         text PRIMARY KEY CHECK (client_id ~ '^[a-z][a-z0-9_.-]{1,63}$'),
    name              text NOT NULL,
    -- NULL for a public client, or a confidential one whose secret an admin
    -- has not issued yet (it cannot authenticate until then).
    secret_digest     bytea CHECK (secret_digest IS NULL OR length(secret_digest) = 32),
    is_public         boolean NOT NULL DEFAULT false,
    grant_types       text[] NOT NULL,
    redirect_uris     text[] NOT NULL DEFAULT '{}',
    allowed_scopes    text[] NOT NULL DEFAULT '{}',
    allowed_audiences text[] NOT NULL DEFAULT '{}',
    disabled          boolean NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (NOT (is_public AND secret_digest IS NOT NULL)),
    CHECK (grant_types <@ ARRAY['client_credentials', 'authorization_code', 'refresh_token']),
    CHECK (NOT (is_public AND 'client_credentials' = ANY (grant_types)))
);

CREATE TABLE users (
    id              uuid PRIMARY KEY,
    -- Stored lower-cased: one account per name whatever the case.
    username        text NOT NULL UNIQUE CHECK (username = lower(username)),
    password_hash   text NOT NULL,
    -- Attempts are counted before the password is checked (see users.rs),
    -- so concurrent guesses cannot exceed the limit.
    failed_attempts integer NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
    locked_until    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE user_roles (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role    text NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    PRIMARY KEY (user_id, role)
);

-- A user's consent to a client: the family of every token issued from one
-- authorization code. Revoking it deactivates them all.
CREATE TABLE grants (
    id            uuid PRIMARY KEY,
    client_id     text NOT NULL REFERENCES clients (client_id),
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope         text NOT NULL,
    audience      text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    revoke_reason text
);

CREATE TABLE authorization_codes (
    code_digest    bytea PRIMARY KEY CHECK (length(code_digest) = 32),
    grant_id       uuid NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    client_id      text NOT NULL,
    redirect_uri   text NOT NULL,
    code_challenge text NOT NULL,
    nonce          text,
    auth_time      timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    redeemed_at    timestamptz
);

CREATE TABLE refresh_tokens (
    token_digest bytea PRIMARY KEY CHECK (length(token_digest) = 32),
    grant_id     uuid NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    issued_at    timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    -- Set when this token was exchanged for a new one.
    rotated_at   timestamptz
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);

-- Access tokens revoked before they expire (RFC 7009). Rows can go once
-- expires_at has passed.
CREATE TABLE revoked_access_tokens (
    jti        uuid PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
