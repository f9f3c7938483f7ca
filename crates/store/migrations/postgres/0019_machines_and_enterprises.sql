-- Machines and enterprises (issue 30).

-- A machine client (client_credentials) has the scopes and resources the operator
-- allowed it (space-separated scopes; a JSON array of resources); NULL: not a machine.
ALTER TABLE clients ADD COLUMN machine_scopes TEXT;
ALTER TABLE clients ADD COLUMN machine_resources TEXT;
-- A private_key_jwt client's keys: a JWK Set (JSON) or where to fetch one.
ALTER TABLE clients ADD COLUMN jwks TEXT;
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;

-- JWT ids already presented (client assertions, ID-JAGs, DPoP proofs), kept until the
-- JWT expires: a second use is a replay, on every instance sharing the database.
CREATE TABLE seen_jtis (
    kind       TEXT NOT NULL,
    issuer     TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (kind, issuer, jti)
);
CREATE INDEX seen_jtis_expiry ON seen_jtis(expires_at);

-- Identity providers trusted to issue ID-JAGs (enterprise-managed authorization).
CREATE TABLE trusted_issuers (
    name            TEXT PRIMARY KEY,
    issuer          TEXT NOT NULL UNIQUE,
    jwks_uri        TEXT NOT NULL,
    allowed_domains TEXT NOT NULL DEFAULT '[]',
    auto_create     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      BIGINT NOT NULL
);

-- The DPoP key (RFC 7638 thumbprint) a token family is bound to (RFC 9449 §5): its
-- refreshes need a proof of that key, and its access tokens carry it as cnf.jkt.
ALTER TABLE token_families ADD COLUMN dpop_jkt TEXT;
