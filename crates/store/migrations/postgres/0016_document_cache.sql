-- A metadata-document client's cache expiry (issue 12) gets its own column; it was a
-- member hidden inside the stored document. Moved for existing rows.
ALTER TABLE clients ADD COLUMN fetched_until BIGINT;
UPDATE clients
SET fetched_until = (metadata::jsonb ->> 'mcpgate_fetched_until')::bigint,
    metadata = (metadata::jsonb - 'mcpgate_fetched_until')::text
WHERE kind = 'metadata_document';
