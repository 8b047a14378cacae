-- A bucket published as a static website: its configuration (JSON), as
-- S3 PutBucketWebsite sets it.
ALTER TABLE buckets ADD COLUMN website TEXT;
