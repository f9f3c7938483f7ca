-- Upstream identity providers for the sign-in page, the identities people signed in
-- with, and sign-ins under way at a provider.

CREATE TABLE identity_providers (
    name            TEXT PRIMARY KEY,
    display_name    TEXT NOT NULL,
    kind            TEXT NOT NULL,              -- oidc | google | entra | github
    issuer          TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    client_secret   TEXT NOT NULL,              -- never logged, never shown
    allowed_domains TEXT NOT NULL DEFAULT '[]', -- JSON array of email domains
    auto_create     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      BIGINT NOT NULL
);

-- A person at a provider is (provider, subject), never an email address.
CREATE TABLE user_identities (
    provider      TEXT NOT NULL,
    subject       TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    email         TEXT,
    created_at    BIGINT NOT NULL,
    last_login_at BIGINT,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX user_identities_user ON user_identities(user_id);

-- Between the redirect to a provider and its callback: single use, short-lived,
-- bound to the browser that started it (the hash of a cookie it holds).
CREATE TABLE idp_logins (
    state_hash    TEXT PRIMARY KEY,
    provider      TEXT NOT NULL,
    browser_hash  TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    next          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
