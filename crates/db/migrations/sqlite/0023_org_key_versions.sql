-- An organisation's key has versions (nuage_storage::rotation): rotating it
-- makes a new version, which wraps every new data key, and rewraps the data
-- keys the earlier versions wrapped, without rewriting any object. A data
-- key names its version ("2:…"; none is version 1).
ALTER TABLE org_keys ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

-- The earlier versions, wrapped as the current one is: sealed files and
-- backups made before a rotation still open with them.
CREATE TABLE org_key_versions (
    org_id TEXT NOT NULL REFERENCES organisations(id),
    version INTEGER NOT NULL,
    sealed_key TEXT NOT NULL,
    kek_epoch INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, version)
);

-- A rotation under way: the version its data keys are rewrapped to, and
-- the last object a pass rewrapped (a pass resumes after it).
CREATE TABLE org_key_rotations (
    org_id TEXT PRIMARY KEY REFERENCES organisations(id),
    version INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    after_object TEXT NOT NULL,
    rewrapped INTEGER NOT NULL DEFAULT 0
);
