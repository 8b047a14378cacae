-- The open directory and the single window: regions the operator declared,
-- public profiles, services, offers, the search index, subscriptions born of
-- orders, and webhooks to providers. Documents are JSON as edited; `listings`
-- holds what is published, flattened for search.

CREATE TABLE regions (
    name TEXT PRIMARY KEY,
    location TEXT NOT NULL,
    jurisdiction TEXT NOT NULL,
    -- 1 when this platform stores data there (a storage region).
    house INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE TABLE profiles (
    org_id TEXT PRIMARY KEY REFERENCES organisations(id),
    is_provider INTEGER NOT NULL DEFAULT 0,
    is_publisher INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    document TEXT NOT NULL,
    -- The version the public sees, if any; `document` may be a newer draft.
    published TEXT,
    review_note TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX profiles_state ON profiles(state);

CREATE TABLE services (
    id TEXT PRIMARY KEY,
    publisher_id TEXT NOT NULL REFERENCES organisations(id),
    state TEXT NOT NULL,
    document TEXT NOT NULL,
    -- The version the public sees, if any; `document` may be a newer draft.
    published TEXT,
    review_note TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX services_publisher ON services(publisher_id);
CREATE INDEX services_state ON services(state);

-- Organisations that declare they use a service.
CREATE TABLE service_users (
    service_id TEXT NOT NULL REFERENCES services(id),
    org_id TEXT NOT NULL REFERENCES organisations(id),
    declared_at INTEGER NOT NULL,
    PRIMARY KEY (service_id, org_id)
);

-- Providers that declare they support a service.
CREATE TABLE service_support (
    service_id TEXT NOT NULL REFERENCES services(id),
    provider_id TEXT NOT NULL REFERENCES organisations(id),
    declared_at INTEGER NOT NULL,
    PRIMARY KEY (service_id, provider_id)
);

CREATE TABLE offers (
    id TEXT PRIMARY KEY,
    provider_id TEXT NOT NULL REFERENCES organisations(id),
    state TEXT NOT NULL,
    document TEXT NOT NULL,
    -- The version the public sees, if any; `document` may be a newer draft.
    published TEXT,
    review_note TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX offers_provider ON offers(provider_id);
CREATE INDEX offers_state ON offers(state);

-- What is published, flattened for search: one row per organisation, service
-- or offer. `shuffle` is drawn at random once and orders results of equal
-- relevance (see nuage_domain::catalogue::query_seed).
CREATE TABLE listings (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    owner_name TEXT NOT NULL,
    name TEXT NOT NULL,
    name_folded TEXT NOT NULL,
    summary TEXT NOT NULL,
    search_text TEXT NOT NULL,
    reference_price_micros INTEGER,
    shuffle INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    -- SQLite: the listing's row in listings_fts (unused on PostgreSQL).
    fts_rowid INTEGER
);
CREATE INDEX listings_kind ON listings(kind);

CREATE TABLE listing_facets (
    listing_id TEXT NOT NULL,
    facet TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (listing_id, facet, value)
);
CREATE INDEX listing_facets_value ON listing_facets(facet, value, listing_id);

CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY,
    offer_id TEXT NOT NULL REFERENCES offers(id),
    provider_id TEXT NOT NULL REFERENCES organisations(id),
    buyer_id TEXT NOT NULL REFERENCES organisations(id),
    region TEXT NOT NULL,
    state TEXT NOT NULL,
    -- The offer as it was ordered: its price holds for this subscription.
    offer_document TEXT NOT NULL,
    -- What was provisioned: buckets, quota, key id (never a secret).
    resources TEXT,
    note TEXT,
    ordered_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX subscriptions_buyer ON subscriptions(buyer_id);
CREATE INDEX subscriptions_provider ON subscriptions(provider_id);

CREATE TABLE subscription_events (
    id TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL REFERENCES subscriptions(id),
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    event TEXT NOT NULL,
    state TEXT NOT NULL,
    note TEXT
);
CREATE INDEX subscription_events_subscription ON subscription_events(subscription_id, id);

CREATE TABLE webhooks (
    org_id TEXT PRIMARY KEY REFERENCES organisations(id),
    url TEXT NOT NULL,
    secret_sealed TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Deliveries to providers' endpoints, retried until acknowledged.
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(delivered_at, next_attempt_at);

-- SQLite's own full-text search. The text is folded (lower case, no
-- diacritics) before it is stored, as the queries are. The facets are tokens
-- too (`location__fr_lyon`), so that FTS5 intersects the words and the
-- filters itself. A listing points at its row here (`fts_rowid`).
CREATE VIRTUAL TABLE listings_fts USING fts5(
    name,
    search_text,
    facets,
    tokenize = 'unicode61 remove_diacritics 2 tokenchars ''_'''
);
CREATE INDEX listings_fts_rowid ON listings(fts_rowid);
