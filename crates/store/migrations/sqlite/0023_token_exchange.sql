-- Token exchange (RFC 8693, issue 27): the audiences of a trusted issuer's access tokens
-- that may be exchanged here for a token of ours (a JSON list; empty: none). A second
-- mcpgate in front of this one exchanges its people's tokens, with no pop-up.
ALTER TABLE trusted_issuers ADD COLUMN exchange_audiences TEXT NOT NULL DEFAULT '[]';
