-- mcpgate schema, version 1. Released migrations are never edited; add a new file.
-- Times are seconds since the Unix epoch. Tokens, codes, sessions and client secrets
-- are stored only as SHA-256 digests (hex); passwords as argon2id PHC strings.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    email         TEXT,
    password_hash TEXT NOT NULL,
    is_admin      BOOLEAN NOT NULL DEFAULT FALSE,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL
);

CREATE TABLE clients (
    client_id          TEXT PRIMARY KEY,
    secret_hash        TEXT,
    name               TEXT NOT NULL,
    redirect_uris      TEXT NOT NULL,           -- JSON array
    kind               TEXT NOT NULL,           -- preregistered | dynamic | metadata_document
    auth_method        TEXT NOT NULL,           -- none | client_secret_basic | client_secret_post
    can_introspect     BOOLEAN NOT NULL DEFAULT FALSE,
    owner_user_id      TEXT,
    registration_hash  TEXT,
    metadata           TEXT NOT NULL DEFAULT '{}',
    created_at         BIGINT NOT NULL,
    last_used_at       BIGINT
);
CREATE INDEX clients_registration_hash ON clients(registration_hash);

CREATE TABLE signing_keys (
    kid        TEXT PRIMARY KEY,
    seed       TEXT NOT NULL,                   -- base64url Ed25519 seed
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

CREATE TABLE auth_requests (
    id_hash        TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    state          TEXT,
    code_challenge TEXT NOT NULL,
    resource       TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);

CREATE TABLE grants (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    resource     TEXT NOT NULL,
    scope        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX grants_user ON grants(user_id);
CREATE UNIQUE INDEX grants_live ON grants(user_id, client_id, resource) WHERE revoked_at IS NULL;

CREATE TABLE auth_codes (
    code_hash      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    grant_id       TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    resource       TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT,
    family_id      TEXT
);

-- A refresh-token family: every token minted from one authorization code by rotation.
CREATE TABLE token_families (
    id         TEXT PRIMARY KEY,
    grant_id   TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    scope      TEXT NOT NULL,
    resource   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    revoked_reason TEXT
);
CREATE INDEX token_families_grant ON token_families(grant_id);

CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    family_id   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    rotated_at  BIGINT,
    -- The answer given when this token was rotated, encrypted under a key derived from
    -- the token itself, kept for a few seconds so that a duplicate refresh gets the
    -- same answer (grace period). Only a holder of the old token can read it.
    grace_answer TEXT,
    grace_until  BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);

-- Revocation handles (token family ids or access-token jtis) for verifiers that keep
-- an in-memory list: each instance polls rows newer than the last it saw.
CREATE TABLE revocations (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    handle     TEXT NOT NULL,
    until_at   BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE login_throttle (
    username     TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    locked_until BIGINT NOT NULL
);

CREATE TABLE scopes (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL
);

-- Redirect URIs of MCP clients that may register: enabled presets and custom entries.
CREATE TABLE allowed_redirects (
    entry      TEXT PRIMARY KEY,                -- "preset:<name>" or a redirect URI
    created_at BIGINT NOT NULL
);

CREATE TABLE audit_events (
    seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        BIGINT NOT NULL,
    event     TEXT NOT NULL,
    user_id   TEXT,
    client_id TEXT,
    detail    TEXT NOT NULL DEFAULT '{}'
);
