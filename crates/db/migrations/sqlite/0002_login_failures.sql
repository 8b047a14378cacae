-- Failed sign-ins per address, to slow down password guessing across all nodes.
CREATE TABLE login_failures (
    email TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX login_failures_email ON login_failures(email, at);
