-- PostgreSQL searches read a narrow table of their own (see
-- nuage_service::catalogue::index): `listings` keeps what a page of results
-- shows, `listing_search` what a search matches and ranks on. A count has
-- to visit the heap row of every match (GIN offers no index-only scans), so
-- the fewer pages the rows fill, the cheaper: about 620 bytes a listing
-- here against 1,300 with the display columns.
DROP INDEX listings_tsv;
DROP INDEX listings_facets;
ALTER TABLE listings DROP COLUMN tsv;
-- `facet=value` separated by spaces, as on SQLite.
ALTER TABLE listings ALTER COLUMN facets TYPE TEXT USING array_to_string(facets, ' ');

-- The terms a listing is found by, all exact GIN entries so that one index
-- scan intersects them (GIN's fast scan walks the rarest list and skips
-- through the others):
-- * every prefix, 1 to 15 characters, of every word of the tsvector (a
--   search word is a prefix; a longer one is matched by its first 15
--   characters and rechecked against the tsvector);
-- * the facets (`location=fr-par`);
-- * `price<=N` for every price ceiling N (euros) at or above the price, and
--   `price<=any` when there is a price (the exact comparison follows on the
--   row);
-- * `key<L>=<B>`: the listing's search key lies in bucket B of level L, the
--   key space (2^53) cut in 2^L equal parts, L = 1 to 16. A bucket is a fair
--   random sample of any set of listings: a search estimates a large match
--   from one and ranks one instead of every match.
-- PL/pgSQL rather than SQL, which the planner would parse again at every
-- query to see whether it can inline it; marked costly so that it never
-- evaluates it row by row in a sequential scan.
CREATE FUNCTION listing_terms(tsv tsvector, facets text, price bigint, search_key bigint)
RETURNS text[] LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE COST 10000 AS $$
BEGIN
    RETURN ARRAY(
        SELECT left(w, n) FROM unnest(tsvector_to_array(tsv)) w, generate_series(1, least(length(w), 15)) n
        UNION SELECT f FROM unnest(string_to_array(facets, ' ')) f WHERE f <> ''
        UNION SELECT 'price<=' || c
            FROM unnest(ARRAY[1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000]::bigint[]) c
            WHERE price <= c * 1000000
        UNION SELECT 'price<=any' WHERE price IS NOT NULL
        UNION SELECT 'key' || l || '=' || (search_key >> (53 - l)) FROM generate_series(1, 16) l
    );
END
$$;

-- A search reads a few thousand rows at most: starting parallel workers
-- would cost more than they save.
CREATE TABLE listing_search (
    search_key BIGINT PRIMARY KEY,
    reference_price_micros BIGINT,
    facets TEXT NOT NULL,
    -- PostgreSQL's own full-text vector over the folded text, for ts_rank;
    -- the name weighs more than the rest.
    tsv tsvector NOT NULL
) WITH (parallel_workers = 0);
-- Without the pending list: a search would scan it whole, and publications
-- are rare next to searches.
CREATE INDEX listing_search_terms ON listing_search
    USING GIN (listing_terms(tsv, facets, reference_price_micros, search_key))
    WITH (fastupdate = off);

-- How many listings the index holds, kept as they come and go (under the
-- empty token, as SQLite's table of the same name does beside its token
-- counts): a search sizes its probe with it.
CREATE TABLE fts_token_docs (
    token TEXT PRIMARY KEY,
    docs BIGINT NOT NULL
);

INSERT INTO listing_search (search_key, reference_price_micros, facets, tsv)
SELECT search_key, reference_price_micros, facets,
       setweight(to_tsvector('simple', name_folded), 'A') || setweight(to_tsvector('simple', search_text), 'B')
FROM listings;
INSERT INTO fts_token_docs (token, docs) SELECT '', COUNT(*) FROM listing_search;
ANALYZE listing_search;
