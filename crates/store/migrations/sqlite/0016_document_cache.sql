-- A metadata-document client's cache expiry (issue 12) gets its own column; it was a
-- member hidden inside the stored document. Moved for existing rows.
ALTER TABLE clients ADD COLUMN fetched_until INTEGER;
UPDATE clients
SET fetched_until = json_extract(metadata, '$.mcpgate_fetched_until'),
    metadata = json_remove(metadata, '$.mcpgate_fetched_until')
WHERE kind = 'metadata_document' AND json_valid(metadata);
