-- Connected accounts (issue 27): each person's own token for an upstream that wants it
-- (credentials = "per_person_token"), sealed at rest like signing keys, and the
-- single-use pages, bound to one person, where they give it.
CREATE TABLE connections (
    user_id      TEXT NOT NULL,
    upstream     TEXT NOT NULL,
    secret       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    PRIMARY KEY (user_id, upstream)
);

CREATE TABLE connect_requests (
    handle_hash    TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL,
    upstream       TEXT NOT NULL,
    elicitation_id TEXT NOT NULL,
    expires_at     INTEGER NOT NULL
);
