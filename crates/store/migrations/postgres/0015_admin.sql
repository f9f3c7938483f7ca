-- Admin pages (issue 16): the audit page filters and the activity chart read
-- audit events by time range.
CREATE INDEX audit_events_at ON audit_events (at);
