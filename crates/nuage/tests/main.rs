//! Integration tests of the `nuage` program: each test starts the real server
//! (`nuage serve`, port 0) on a fresh SQLite file, or on a fresh PostgreSQL
//! database when `NUAGE_TEST_DATABASE_URL` names a server, and drives it over
//! HTTP, through the real command line, and with aws-sdk-s3 on the S3 listener.

mod billing;
mod helpers;
mod market;
mod platform;
mod procurement;
mod storage;
