//! Object storage and the drive: S3 (with its durability, fuzzing and isolation), the drive and WebDAV, websites.

pub(crate) mod custody;
pub(crate) mod drive;
pub(crate) mod key_rotation;
pub(crate) mod s3;
pub(crate) mod s3_acl;
pub(crate) mod s3_durability;
pub(crate) mod s3_fuzz;
pub(crate) mod s3_isolation;
pub(crate) mod s3_object_lock;
pub(crate) mod s3_policy;
pub(crate) mod website;
