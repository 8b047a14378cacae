-- The platform's keys by purpose and epoch (nuage_service::platform_keys):
-- the key-encryption key that wraps organisations' keys (kek), the audit
-- chain's key (audit) and the key that signs checkpoints, receipts and
-- certificates (signing). Rotation starts a new epoch; a row is never
-- deleted, so the history of public keys stays published.
CREATE TABLE platform_keys (
    purpose TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    provider TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    public_key TEXT,
    created_at BIGINT NOT NULL,
    retired_at BIGINT,
    PRIMARY KEY (purpose, epoch)
);

-- The epochs the chain's writers use now, on the row every append locks:
-- a rotation and an append never cross.
ALTER TABLE audit_head ADD COLUMN audit_epoch BIGINT NOT NULL DEFAULT 1;
ALTER TABLE audit_head ADD COLUMN signing_epoch BIGINT NOT NULL DEFAULT 1;
-- The epoch of the key each record's link was made with.
ALTER TABLE audit_log ADD COLUMN key_epoch BIGINT NOT NULL DEFAULT 1;

-- The key-encryption key's epoch that wraps each organisation's key; 0 is
-- the master key's sealing key, before key-encryption keys had epochs.
ALTER TABLE org_keys ADD COLUMN kek_epoch BIGINT NOT NULL DEFAULT 0;
CREATE INDEX org_keys_kek_epoch ON org_keys(kek_epoch);
