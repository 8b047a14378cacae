-- Who holds an organisation's key (nuage_storage::custody). By default the
-- platform wraps it (platform); an organisation may have it wrapped by a
-- key in its own KMS, reached over KMIP (external), which Nuage asks to
-- unwrap it and never holds.
CREATE TABLE org_custody (
    org_id TEXT PRIMARY KEY REFERENCES organisations(id),
    endpoint TEXT NOT NULL,
    server_name TEXT NOT NULL,
    ca_pem TEXT NOT NULL,
    key_id TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
ALTER TABLE org_keys ADD COLUMN custody TEXT NOT NULL DEFAULT 'platform';
ALTER TABLE org_key_versions ADD COLUMN custody TEXT NOT NULL DEFAULT 'platform';
