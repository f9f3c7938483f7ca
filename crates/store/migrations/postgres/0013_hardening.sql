-- Hardening (issue 13): explicit first-run markers, shared rate-limit counters.

-- One row per first-run step done (e.g. 'allowed_presets'): seeding happens once,
-- whatever command touches the database first.
CREATE TABLE seeded (
    step TEXT PRIMARY KEY,
    at   BIGINT NOT NULL
);
-- Databases seeded before this table existed keep their lists as the operator left them.
INSERT INTO seeded (step, at) SELECT 'allowed_presets', 0 WHERE EXISTS (SELECT 1 FROM allowed_redirects);

-- Fixed-window request counters per key ('register:<addr>', 'login-src:<addr>', …),
-- shared by every instance on the database.
CREATE TABLE rate_limits (
    key          TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    hits         BIGINT NOT NULL
);
