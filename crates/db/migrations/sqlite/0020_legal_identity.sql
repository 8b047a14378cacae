-- What invoices must say of an organisation beyond its name, kind, SIRET
-- and VAT number: postal address, legal form, share capital, RCS, Chorus
-- Pro codes, the option for VAT on debits. One JSON document, whose rules
-- are the domain's (nuage_domain::legal).
CREATE TABLE org_legal_identities (
    org_id TEXT PRIMARY KEY REFERENCES organisations(id),
    document TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- What a billing run did not invoice for a customer and an issuer, and
-- took no number for: `incomplete` while either party's legal identity
-- lacks what the invoice must say (`missing`, a JSON list), issued by a
-- later run once completed (`released_at`); `zero` for a month that came
-- to 0.00, shown to the customer as a statement (`document`).
CREATE TABLE billing_holds (
    run_id TEXT NOT NULL REFERENCES billing_runs(id),
    customer_id TEXT NOT NULL,
    issuer_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    missing TEXT NOT NULL,
    document TEXT,
    held_at BIGINT NOT NULL,
    released_at BIGINT,
    PRIMARY KEY (run_id, customer_id, issuer_id)
);
CREATE INDEX billing_holds_open ON billing_holds(reason, released_at);
CREATE INDEX billing_holds_customer ON billing_holds(customer_id, held_at);
