-- Object storage: per-organisation keys, buckets, object versions, multipart
-- uploads, blobs waiting for deletion, quotas and usage, the access log and
-- request metering. Object keys compare by their UTF-8 bytes (SQLite's BINARY
-- collation; PostgreSQL's "C"), which is S3's listing order.

CREATE TABLE org_keys (
    org_id TEXT PRIMARY KEY REFERENCES organisations(id),
    sealed_key TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE buckets (
    name TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    region TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    versioning TEXT,
    tagging TEXT,
    cors TEXT,
    lifecycle TEXT
);
CREATE INDEX buckets_org ON buckets(org_id, name);

CREATE TABLE objects (
    id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL REFERENCES buckets(name),
    key TEXT NOT NULL,
    version_id TEXT NOT NULL,
    is_latest BIGINT NOT NULL,
    delete_marker BIGINT NOT NULL,
    size BIGINT NOT NULL,
    etag TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    headers TEXT NOT NULL,
    tags TEXT NOT NULL,
    checksum TEXT,
    segments TEXT NOT NULL,
    sse_c TEXT
);
CREATE UNIQUE INDEX objects_latest ON objects(bucket, key) WHERE is_latest = 1;
CREATE INDEX objects_versions ON objects(bucket, key, created_at);

CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL REFERENCES buckets(name),
    key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    headers TEXT NOT NULL,
    tags TEXT NOT NULL,
    checksum_algorithm TEXT,
    sse_c TEXT
);
CREATE INDEX uploads_bucket ON uploads(bucket, key, id);

CREATE TABLE upload_parts (
    upload_id TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
    part_number BIGINT NOT NULL,
    blob_id TEXT NOT NULL,
    wrapped_key TEXT NOT NULL,
    size BIGINT NOT NULL,
    etag TEXT NOT NULL,
    checksum TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);

-- Every placed blob and what holds it (an object version, or an upload
-- whose id becomes the version's); a blob on disk that is not here and not
-- being written is an orphan.
CREATE TABLE blobs (
    blob_id TEXT PRIMARY KEY,
    region TEXT NOT NULL,
    owner_id TEXT NOT NULL
);

CREATE TABLE blob_trash (
    blob_id TEXT PRIMARY KEY,
    region TEXT NOT NULL,
    queued_at BIGINT NOT NULL
);

CREATE TABLE org_storage (
    org_id TEXT PRIMARY KEY REFERENCES organisations(id),
    bytes BIGINT NOT NULL DEFAULT 0,
    objects BIGINT NOT NULL DEFAULT 0,
    max_bytes BIGINT,
    max_objects BIGINT
);

CREATE TABLE storage_deltas (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    bucket TEXT NOT NULL,
    at BIGINT NOT NULL,
    delta_bytes BIGINT NOT NULL,
    delta_objects BIGINT NOT NULL
);
CREATE INDEX storage_deltas_org ON storage_deltas(org_id, at);

CREATE TABLE usage_records (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    bucket TEXT NOT NULL,
    hour BIGINT NOT NULL,
    class_a BIGINT NOT NULL,
    class_b BIGINT NOT NULL,
    egress_bytes BIGINT NOT NULL,
    exit_egress_bytes BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL
);
CREATE INDEX usage_records_org ON usage_records(org_id, hour);

CREATE TABLE access_log (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    operation TEXT NOT NULL,
    bucket TEXT NOT NULL,
    key TEXT,
    access_key_id TEXT,
    source TEXT NOT NULL,
    status BIGINT NOT NULL,
    bytes BIGINT NOT NULL
);
CREATE INDEX access_log_org ON access_log(org_id, id);
