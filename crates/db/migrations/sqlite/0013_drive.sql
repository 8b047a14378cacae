-- The drive: app passwords for WebDAV clients (stored as SHA-256, bound to a
-- user and one organisation's drive), and WebDAV locks, shared by every node.

CREATE TABLE app_passwords (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    org_id TEXT NOT NULL REFERENCES organisations(id),
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX app_passwords_user ON app_passwords(user_id, id);

CREATE TABLE dav_locks (
    token TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    path TEXT NOT NULL,
    principal TEXT,
    owner TEXT,
    timeout_ms BIGINT,
    expires_at BIGINT,
    shared BIGINT NOT NULL,
    deep BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX dav_locks_org ON dav_locks(org_id, path);

-- Links that share a file or folder of the drive: read-only, or upload-only
-- (a drop box). The token in the link is stored sealed under the master key
-- (so that its owner can copy the link again) and as SHA-256 (to find it);
-- the optional password as argon2id.
CREATE TABLE share_links (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    path TEXT NOT NULL,
    folder BIGINT NOT NULL,
    mode TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    token_sealed TEXT NOT NULL,
    password_hash TEXT,
    expires_at BIGINT,
    revoked_at BIGINT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX share_links_org ON share_links(org_id, id);

-- A file or folder of an organisation's drive shared with one user of the
-- platform, to read or to read and write; it shows in that user's drive.
CREATE TABLE drive_grants (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    path TEXT NOT NULL,
    folder BIGINT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    access TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX drive_grants_user ON drive_grants(user_id, id);
CREATE INDEX drive_grants_org ON drive_grants(org_id, id);
