-- How each issued invoice reaches its buyer (nuage_domain::invoice_delivery):
-- one delivery per invoice and channel, tried until delivered or given up;
-- each attempt is kept, for the buyer and the issuer to see.
CREATE TABLE invoice_deliveries (
    id TEXT PRIMARY KEY,
    invoice_id TEXT NOT NULL REFERENCES invoices(id),
    channel TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    remote_id TEXT,
    delivered_at BIGINT,
    created_at BIGINT NOT NULL,
    UNIQUE (invoice_id, channel)
);
CREATE INDEX invoice_deliveries_due ON invoice_deliveries(status, next_attempt_at);

CREATE TABLE invoice_delivery_attempts (
    delivery_id TEXT NOT NULL REFERENCES invoice_deliveries(id),
    attempt BIGINT NOT NULL,
    at BIGINT NOT NULL,
    ok BIGINT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
