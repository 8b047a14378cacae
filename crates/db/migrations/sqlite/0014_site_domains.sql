-- Domains of their own that websites are served at. A claim names a bucket
-- and carries the token its owner publishes in a TXT record; it is served
-- only once proven (verified_at), and one domain is proven for one bucket
-- at most.
CREATE TABLE site_domains (
    domain TEXT NOT NULL,
    bucket TEXT NOT NULL,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    verified_at BIGINT,
    PRIMARY KEY (domain, bucket)
);
CREATE UNIQUE INDEX site_domains_proven ON site_domains(domain) WHERE verified_at IS NOT NULL;
CREATE INDEX site_domains_bucket ON site_domains(bucket, domain);
