-- Bucket policies and Block Public Access. A bucket's policy (the JSON its
-- owner gave, checked) and its Block Public Access switches (JSON; none
-- stored means every switch on); an organisation's switches, which hold
-- for all its buckets.
ALTER TABLE buckets ADD COLUMN policy TEXT;
ALTER TABLE buckets ADD COLUMN public_access_block TEXT;
ALTER TABLE org_storage ADD COLUMN public_access_block TEXT;
