-- Dynamic registrations at the cap (issue 13): the oldest one never used is evicted
-- to make room. "Used" means an authorization code was issued to the client
-- (clients.last_used_at, set then and at every token issue since).

-- Registrations that already hold a grant were used (codes are issued with grants):
-- stamp them, so that eviction never takes a client someone authorized.
UPDATE clients SET last_used_at = (SELECT MAX(g.created_at) FROM grants g WHERE g.client_id = clients.client_id)
WHERE last_used_at IS NULL AND EXISTS (SELECT 1 FROM grants g WHERE g.client_id = clients.client_id);

-- The eviction candidates, oldest first.
CREATE INDEX clients_unused_dynamic ON clients (created_at) WHERE kind = 'dynamic' AND last_used_at IS NULL;
