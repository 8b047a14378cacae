-- Pay-per-use billing (see nuage_service::catalogue::billing).

-- An organisation's country (ISO 3166-1 alpha-2), for VAT: none outside
-- the EU. Organisations created before default to France.
ALTER TABLE organisations ADD COLUMN country TEXT NOT NULL DEFAULT 'FR';

-- One run per billing period, in order: a period starts where the last one
-- ended. A run bills the usage records with an hour before its end that
-- were written before its cut and not billed by the run before (whose own
-- end and cut bound what it took), so a late record is billed once, by the
-- next run, as an adjustment.
CREATE TABLE billing_runs (
    id TEXT PRIMARY KEY,
    period_start BIGINT NOT NULL UNIQUE,
    period_end BIGINT NOT NULL UNIQUE,
    cut_at BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    -- Set when every invoice of the run is issued; a run interrupted
    -- before resumes with the same cut and issues only what is missing.
    completed_at BIGINT
);

-- The run that issued an invoice: one invoice per customer and issuer and
-- run, so a resumed run cannot issue one twice.
ALTER TABLE invoices ADD COLUMN run_id TEXT REFERENCES billing_runs(id);
CREATE UNIQUE INDEX invoices_run_parties ON invoices(run_id, customer_id, issuer_id);
CREATE INDEX invoices_corrects ON invoices(corrects_id);

-- Late records are found by when they were written.
CREATE INDEX usage_records_recorded ON usage_records(recorded_at, hour);
-- A run sums a month's records per organisation and bucket: this index
-- holds every column it reads, in the order it groups them, so the sum is
-- one walk of the index, without a sort.
CREATE INDEX usage_records_billing ON usage_records(org_id, bucket, hour, recorded_at, class_a, class_b, egress_bytes, exit_egress_bytes);

-- Alerts an organisation sets on its storage quota, at percentages of it.
CREATE TABLE quota_alerts (
    org_id TEXT PRIMARY KEY REFERENCES organisations(id),
    -- Percentages, ascending, comma-separated: "80,95".
    thresholds TEXT NOT NULL,
    -- The highest threshold already told (0 for none): each is told once
    -- per crossing, and again after use fell below it.
    notified_percent BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE quota_alert_events (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    at BIGINT NOT NULL,
    percent BIGINT NOT NULL,
    used_bytes BIGINT NOT NULL,
    max_bytes BIGINT NOT NULL
);
CREATE INDEX quota_alert_events_org ON quota_alert_events(org_id, at);
