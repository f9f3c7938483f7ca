-- Token exchange (RFC 8693, issue 27): which of a trusted issuer's access tokens may be
-- exchanged here for a token of ours, and by whom (JSON lists; empty: none). A second
-- mcpgate in front of this one exchanges its people's tokens, with no pop-up; only the
-- clients the operator names may ask.
ALTER TABLE trusted_issuers ADD COLUMN exchange_audiences TEXT NOT NULL DEFAULT '[]';
ALTER TABLE trusted_issuers ADD COLUMN exchange_clients TEXT NOT NULL DEFAULT '[]';
