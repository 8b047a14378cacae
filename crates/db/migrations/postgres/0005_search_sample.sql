-- The search index, rebuilt for bounded searches (see
-- nuage_service::catalogue::index). Each listing draws a random `search_key`
-- once (below 2^53): it orders results of equal relevance
-- (`search_key XOR seed`), and a range of keys is a fair random sample of
-- any set of listings. The index is derived data: the tables are recreated
-- empty and the service re-indexes every published sheet when it starts
-- (`Catalogue::start`).
DROP TABLE listing_facets;
DROP TABLE listings;

CREATE TABLE listings (
    id TEXT PRIMARY KEY,
    search_key BIGINT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    owner_name TEXT NOT NULL,
    name TEXT NOT NULL,
    name_folded TEXT NOT NULL,
    summary TEXT NOT NULL,
    search_text TEXT NOT NULL,
    reference_price_micros BIGINT,
    -- The facets (`location=fr-lyon`), under a GIN index that PostgreSQL
    -- combines with the text's.
    facets text[] NOT NULL,
    updated_at BIGINT NOT NULL,
    -- PostgreSQL's own full-text search over the folded text; the name
    -- weighs more than the rest.
    tsv tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', name_folded), 'A') || setweight(to_tsvector('simple', search_text), 'B')
    ) STORED
);
CREATE INDEX listings_kind ON listings(kind, name);
CREATE INDEX listings_tsv ON listings USING GIN (tsv);
CREATE INDEX listings_facets ON listings USING GIN (facets);
