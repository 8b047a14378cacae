-- Calls for tender (see nuage_service::tenders). A call is drafted, then
-- published with the public half of its opening key; bids are stored as the
-- bidders sealed them (age ciphertext, base64) with their SHA-256 and the
-- signed receipt; opening after the deadline fills in what they say.
CREATE TABLE tenders (
    id TEXT PRIMARY KEY,
    buyer_org_id TEXT NOT NULL REFERENCES organisations(id),
    -- draft, published, opened, cancelled
    state TEXT NOT NULL,
    -- The current TenderSpec, JSON; its earlier versions are in
    -- tender_versions.
    spec TEXT NOT NULL,
    version INTEGER NOT NULL,
    deadline_at BIGINT NOT NULL,
    -- The age recipient (age1…) bids are sealed to, and how its private
    -- half is held: single (one holder) or shares (k of n).
    recipient TEXT,
    key_mode TEXT,
    shares_threshold INTEGER,
    shares_total INTEGER,
    standstill_days INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    published_at BIGINT,
    opened_at BIGINT,
    opened_by TEXT,
    cancelled_at BIGINT,
    cancel_reason TEXT
);
CREATE INDEX tenders_buyer ON tenders(buyer_org_id);
CREATE INDEX tenders_state ON tenders(state, deadline_at);

-- Every published version, for amendments.
CREATE TABLE tender_versions (
    tender_id TEXT NOT NULL REFERENCES tenders(id),
    version INTEGER NOT NULL,
    spec TEXT NOT NULL,
    summary TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (tender_id, version)
);

-- One row per envelope received. Only the last envelope of a bidder that
-- is not withdrawn counts: replaced envelopes point to their successor.
CREATE TABLE bids (
    id TEXT PRIMARY KEY,
    tender_id TEXT NOT NULL REFERENCES tenders(id),
    bidder_org_id TEXT NOT NULL REFERENCES organisations(id),
    ciphertext TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    submitted_at BIGINT NOT NULL,
    submitted_by TEXT NOT NULL,
    receipt TEXT NOT NULL,
    replaced_by TEXT,
    withdrawn_at BIGINT,
    -- After opening: the bid, sealed under the platform's key, or why it
    -- could not be read.
    opened TEXT,
    open_error TEXT
);
CREATE INDEX bids_tender ON bids(tender_id, bidder_org_id);
CREATE UNIQUE INDEX bids_one_live ON bids(tender_id, bidder_org_id)
    WHERE replaced_by IS NULL AND withdrawn_at IS NULL;

-- The evaluation of one lot of one envelope, after opening.
CREATE TABLE bid_lots (
    bid_id TEXT NOT NULL REFERENCES bids(id),
    lot INTEGER NOT NULL,
    tender_id TEXT NOT NULL REFERENCES tenders(id),
    offer_id TEXT NOT NULL,
    price TEXT NOT NULL,
    -- JSON: the outcome of every rule.
    eligibility TEXT NOT NULL,
    eligible INTEGER NOT NULL,
    excluded_reason TEXT,
    -- JSON: the buyer's marks by technical criterion.
    marks TEXT NOT NULL,
    PRIMARY KEY (bid_id, lot)
);
CREATE INDEX bid_lots_lot ON bid_lots(tender_id, lot);

-- The award of a lot, then its contract.
CREATE TABLE tender_awards (
    tender_id TEXT NOT NULL REFERENCES tenders(id),
    lot INTEGER NOT NULL,
    bid_id TEXT NOT NULL REFERENCES bids(id),
    supplier_org_id TEXT NOT NULL REFERENCES organisations(id),
    offer_id TEXT NOT NULL,
    -- The monthly price for the usage profile, and over the duration.
    price TEXT NOT NULL,
    amount TEXT NOT NULL,
    -- JSON: the ranking at the award.
    ranking TEXT NOT NULL,
    awarded_at BIGINT NOT NULL,
    awarded_by TEXT NOT NULL,
    standstill_until BIGINT NOT NULL,
    signed_at BIGINT,
    signed_by TEXT,
    subscription_id TEXT,
    PRIMARY KEY (tender_id, lot)
);
