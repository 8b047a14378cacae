-- The search index, rebuilt for bounded searches (see
-- nuage_service::catalogue::index). Each listing draws a random `search_key`
-- once (below 2^53): it is the listing's rowid in listings_fts, orders
-- results of equal relevance (`search_key XOR seed`), and a range of keys is
-- a fair random sample of any set of listings. The index is derived data:
-- the tables are recreated empty and the service re-indexes every published
-- sheet when it starts (`Catalogue::start`).
DROP TABLE listings_fts;
DROP TABLE listing_facets;
DROP TABLE listings;

-- The key is the rowid, and the columns a search reads for each match of
-- its sample (price, facets) come first, before the long text.
CREATE TABLE listings (
    search_key INTEGER PRIMARY KEY,
    reference_price_micros INTEGER,
    -- The facets, `facet=value` separated by spaces (values have none).
    facets TEXT NOT NULL,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    owner_name TEXT NOT NULL,
    name TEXT NOT NULL,
    name_folded TEXT NOT NULL,
    summary TEXT NOT NULL,
    search_text TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX listings_kind ON listings(kind, name);

-- SQLite's own full-text search. The text is folded (lower case, no
-- diacritics) before it is stored, as the queries are. The facets are tokens
-- too (`location__fr_lyon`), with price ceilings (`price_le__50`), so that
-- FTS5 intersects the words and the filters itself. Every word of a query
-- is a prefix: the prefix indexes (2 to 15 characters) let FTS5 read one
-- list for it instead of merging the lists of every word that starts so
-- (about six times the index's size; a longer or one-letter prefix still
-- merges).
CREATE VIRTUAL TABLE listings_fts USING fts5(
    name,
    search_text,
    facets,
    tokenize = 'unicode61 remove_diacritics 2 tokenchars ''_''',
    prefix = '2 3 4 5 6 7 8 9 10 11 12 13 14 15'
);

-- How many listings hold each facet and price token of listings_fts, and
-- under '' how many listings there are: a search checks the filters most
-- listings pass on the row rather than in its bm25 statement.
CREATE TABLE fts_token_docs (
    token TEXT PRIMARY KEY,
    docs INTEGER NOT NULL
) WITHOUT ROWID;
