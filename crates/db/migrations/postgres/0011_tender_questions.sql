-- Questions of suppliers on a call, asked privately; the buyer's answer is
-- published to all, without the asker's name.
CREATE TABLE tender_questions (
    id TEXT PRIMARY KEY,
    tender_id TEXT NOT NULL REFERENCES tenders(id),
    asker_org_id TEXT NOT NULL REFERENCES organisations(id),
    question TEXT NOT NULL,
    asked_by TEXT NOT NULL,
    asked_at BIGINT NOT NULL,
    answer TEXT,
    answered_by TEXT,
    answered_at BIGINT
);
CREATE INDEX tender_questions_tender ON tender_questions(tender_id, asked_at);

-- What each amendment changed (JSON: the fields), beside its summary.
ALTER TABLE tender_versions ADD COLUMN changes TEXT NOT NULL DEFAULT '[]';
