-- Background jobs (billing, webhook deliveries, storage upkeep, quota
-- alerts, housekeeping): one row per job. A node runs a job only while it
-- holds the job's lease; a lease that is not renewed (its node died) lapses
-- and another node takes the job over. `finished_at` spaces the runs, so
-- that several nodes run each job once per interval.
CREATE TABLE jobs (
    name TEXT PRIMARY KEY,
    holder TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0,
    started_at BIGINT,
    finished_at BIGINT,
    runs BIGINT NOT NULL DEFAULT 0,
    last_outcome TEXT,
    last_error TEXT
);

-- A version per cache that several nodes keep (the websites' configuration
-- today): a node that changes what a cache holds bumps its version, and
-- every node drops its copy when it sees a newer one.
CREATE TABLE cache_versions (
    name TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);
