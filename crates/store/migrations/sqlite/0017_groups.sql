-- Who may hold which scope (issue 26): groups of people, their members, and the
-- groups a scope is restricted to. A scope with no row in scope_groups is open to
-- every signed-in person (the behaviour before groups existed).

CREATE TABLE user_groups (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    -- The identity provider whose groups claim sets this group's provider memberships
    -- at each sign-in through it; NULL: members are added by hand only.
    provider    TEXT,
    created_at  INTEGER NOT NULL
);

-- A membership has a source: 'manual' (an operator or administrator added it) or
-- 'provider' (the provider's groups claim at the person's last sign-in). A sign-in
-- replaces the person's provider memberships and never touches manual ones.
CREATE TABLE group_members (
    group_name TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    source     TEXT NOT NULL,
    added_at   INTEGER NOT NULL,
    PRIMARY KEY (group_name, user_id, source)
);
CREATE INDEX group_members_user ON group_members(user_id);

CREATE TABLE scope_groups (
    scope      TEXT NOT NULL,
    group_name TEXT NOT NULL,
    PRIMARY KEY (scope, group_name)
);

-- Scopes a grant asked for that the person may not hold: shown on the person's
-- connected-apps page ("withheld"), space-separated like scope.
ALTER TABLE grants ADD COLUMN withheld TEXT NOT NULL DEFAULT '';

-- The ID-token (or userinfo) claim listing the person's groups at this provider, and
-- the scope to ask for so that the provider sends it (some need one, as Okta's
-- `groups`; others are configured at the provider).
ALTER TABLE identity_providers ADD COLUMN groups_claim TEXT;
ALTER TABLE identity_providers ADD COLUMN groups_scope TEXT;
