-- Connected accounts through the upstream's own OAuth (issue 27, credentials = "oauth").
-- A connection's tokens are refreshed by one caller at a time across instances: the
-- caller that moves refreshing_until forward for the current generation refreshes; the
-- others wait for the generation to change and use its result (upstreams rotate refresh
-- tokens, and a second refresh with the old one ends the grant).
ALTER TABLE connections ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN refreshing_until BIGINT;

-- How mcpgate identifies itself to each upstream's authorization server when it
-- registered dynamically (RFC 7591): one registration shared by every instance.
CREATE TABLE upstream_clients (
    upstream   TEXT NOT NULL,
    issuer     TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    secret     TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (upstream, issuer)
);

-- A person on their way through an upstream's sign-in: found again by the state the
-- upstream hands back (its hash), once; the PKCE verifier is sealed.
CREATE TABLE connect_attempts (
    state_hash   TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    upstream     TEXT NOT NULL,
    verifier     TEXT NOT NULL,
    request_hash TEXT,
    expires_at   BIGINT NOT NULL
);
