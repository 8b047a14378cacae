-- A call's documents, sealed with the buyer's organisation key in the blob
-- store (the blob is also recorded in `blobs`, so upkeep keeps it).
CREATE TABLE tender_documents (
    id TEXT PRIMARY KEY,
    tender_id TEXT NOT NULL REFERENCES tenders(id),
    name TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    region TEXT NOT NULL,
    blob_id TEXT NOT NULL,
    wrapped_key TEXT NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_at BIGINT NOT NULL,
    UNIQUE (tender_id, name)
);
