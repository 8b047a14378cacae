-- Object Lock. A bucket's configuration (JSON: its default retention), set
-- once the bucket has Object Lock and never cleared; each version's
-- retention (mode and date, milliseconds) and legal hold; and what an
-- unfinished multipart upload asked for, given to the object it completes.
ALTER TABLE buckets ADD COLUMN object_lock TEXT;
ALTER TABLE objects ADD COLUMN lock_mode TEXT;
ALTER TABLE objects ADD COLUMN lock_until BIGINT;
ALTER TABLE objects ADD COLUMN legal_hold BIGINT NOT NULL DEFAULT 0;
ALTER TABLE uploads ADD COLUMN object_lock TEXT;
