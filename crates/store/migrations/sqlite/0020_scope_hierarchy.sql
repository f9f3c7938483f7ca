-- Scope hierarchies the operator declares (MCP 2026-07-28 "Runtime Insufficient Scope
-- Errors": servers account for them): a broader scope includes narrower ones, so a
-- consent to it, a machine allowed it or an assertion carrying it holds them too.
CREATE TABLE scope_includes (
    scope    TEXT NOT NULL,
    includes TEXT NOT NULL,
    PRIMARY KEY (scope, includes)
);
