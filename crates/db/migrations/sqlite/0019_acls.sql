-- ACLs. A bucket's Object Ownership (none stored: BucketOwnerEnforced, ACLs
-- disabled) and its ACL's grants beyond the owner's full control (JSON);
-- an object version's grants, by the version's row id (which a multipart
-- upload's id already is), removed with the version.
ALTER TABLE buckets ADD COLUMN ownership TEXT;
ALTER TABLE buckets ADD COLUMN acl TEXT;
CREATE TABLE object_acls (
    object_id TEXT PRIMARY KEY,
    acl TEXT NOT NULL
);
