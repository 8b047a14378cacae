-- Export keys (EU Data Act): an organisation leaving the platform takes
-- its data out with a read-only S3 key whose downloads are exit egress,
-- counted apart and never charged. An export key lives 30 days at most.
ALTER TABLE s3_keys ADD COLUMN purpose TEXT NOT NULL DEFAULT 'access';
ALTER TABLE s3_keys ADD COLUMN expires_at BIGINT;
-- One live export key per organisation: one that expired is marked
-- revoked (at its expiry) before another is made.
CREATE UNIQUE INDEX s3_keys_one_export ON s3_keys(org_id)
    WHERE purpose = 'export' AND revoked_at IS NULL;
