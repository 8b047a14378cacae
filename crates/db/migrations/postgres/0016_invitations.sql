-- Membership by invitation: an organisation's owner or admin invites an
-- address; nothing changes for its user until they accept. One pending
-- invitation per organisation and address.
CREATE TABLE invitations (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    invited_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    accepted_at BIGINT,
    declined_at BIGINT
);
CREATE INDEX invitations_email ON invitations(email, created_at);
CREATE INDEX invitations_org ON invitations(org_id, created_at);
CREATE UNIQUE INDEX invitations_one_pending ON invitations(org_id, email)
    WHERE accepted_at IS NULL AND declined_at IS NULL;

-- The organisation a user last chose in the console, restored at sign-in.
CREATE TABLE last_orgs (
    user_id TEXT PRIMARY KEY REFERENCES users(id),
    org_id TEXT NOT NULL
);

-- E-mails sent on anyone's request are limited per recipient and hour.
CREATE INDEX outbox_recipient ON outbox(recipient, created_at);
