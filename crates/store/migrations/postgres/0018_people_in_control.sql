-- People in control (issue 28): a consent that ends, and the steps of each client's
-- connections for the doctor.

-- When the grant ends (Unix seconds), as the person chose at consent; NULL: until
-- revoked. No token outlives it: access tokens' exp and refresh tokens' expiry are
-- capped by it.
ALTER TABLE grants ADD COLUMN expires_at BIGINT;

-- The steps of clients' connections as they happen (register, authorize, consent,
-- token, call, refresh), for `mcpgate doctor`. Bounded per client and in total, and
-- expired by the housekeeping; written in batches, off the request path.
CREATE TABLE client_steps (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id  TEXT NOT NULL,
    at         BIGINT NOT NULL,
    step       TEXT NOT NULL,
    -- ok | refused | pending
    outcome    TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX client_steps_client ON client_steps(client_id, seq);
CREATE INDEX client_steps_at ON client_steps(at);
