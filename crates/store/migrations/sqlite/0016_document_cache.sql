-- A metadata-document client's cache expiry (issue 12) gets its own column; it was a
-- member (`mcpgate_fetched_until`) inside the stored document. Existing document
-- clients start with none, so each is fetched again on its next use, which rewrites
-- its metadata without that member. Nothing else is read from the old member, and
-- the stored documents are not parsed here: they are a stranger's JSON, which one
-- backend's parser may refuse (PostgreSQL's jsonb refuses \u0000).
ALTER TABLE clients ADD COLUMN fetched_until INTEGER;
