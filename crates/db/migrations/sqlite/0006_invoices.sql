-- Invoices and credit notes (see nuage_db::repo::billing). Each issuer
-- numbers its own, from 1, without gaps: the number is taken from the
-- issuer's counter in the transaction that writes the invoice, so a
-- transaction that fails or a node that stops before its commit takes no
-- number. Once written, an invoice never changes: corrections are credit
-- notes, and the triggers below refuse any change or removal.
CREATE TABLE invoice_counters (
    issuer_id TEXT PRIMARY KEY REFERENCES organisations(id),
    last_number BIGINT NOT NULL
);

CREATE TABLE invoices (
    id TEXT PRIMARY KEY,
    issuer_id TEXT NOT NULL REFERENCES organisations(id),
    number BIGINT NOT NULL,
    -- 'invoice' or 'credit_note'
    kind TEXT NOT NULL,
    -- A credit note's invoice.
    corrects_id TEXT REFERENCES invoices(id),
    customer_id TEXT NOT NULL REFERENCES organisations(id),
    period_start BIGINT NOT NULL,
    period_end BIGINT NOT NULL,
    currency TEXT NOT NULL,
    -- Decimal amounts, as text.
    net TEXT NOT NULL,
    vat TEXT NOT NULL,
    gross TEXT NOT NULL,
    -- What the invoice says, whole (parties, lines, VAT), as JSON.
    document TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    UNIQUE (issuer_id, number)
);
CREATE INDEX invoices_customer ON invoices(customer_id, issued_at);

CREATE TRIGGER invoices_are_immutable BEFORE UPDATE ON invoices
BEGIN
    SELECT RAISE(ABORT, 'an issued invoice cannot change: issue a credit note');
END;
CREATE TRIGGER invoices_are_kept BEFORE DELETE ON invoices
BEGIN
    SELECT RAISE(ABORT, 'an issued invoice cannot be removed');
END;
