//! The one mapping from storage errors to S3 errors.

use nuage_storage::StorageError;
use s3s::{S3Error, S3ErrorCode, s3_error};

pub fn s3(e: StorageError) -> S3Error {
    use StorageError as E;
    match e {
        E::AccessDenied => s3_error!(AccessDenied, "Access Denied"),
        E::NoSuchBucket => s3_error!(NoSuchBucket, "The specified bucket does not exist"),
        E::NoSuchKey => s3_error!(NoSuchKey, "The specified key does not exist."),
        E::NoSuchVersion => s3_error!(NoSuchVersion, "The specified version does not exist."),
        E::NoSuchUpload => s3_error!(NoSuchUpload, "The specified upload does not exist."),
        E::BucketAlreadyExists => s3_error!(
            BucketAlreadyExists,
            "The requested bucket name is not available. Please select a different name and try again."
        ),
        E::BucketAlreadyOwnedByYou => s3_error!(
            BucketAlreadyOwnedByYou,
            "Your previous request to create the named bucket succeeded and you already own it."
        ),
        E::BucketNotEmpty => s3_error!(
            BucketNotEmpty,
            "The bucket you tried to delete is not empty"
        ),
        E::InvalidBucketName(m) => S3Error::with_message(S3ErrorCode::InvalidBucketName, m),
        E::InvalidArgument(m) => S3Error::with_message(S3ErrorCode::InvalidArgument, m),
        E::InvalidRequest(m) => S3Error::with_message(S3ErrorCode::InvalidRequest, m),
        E::InvalidLocationConstraint(r) => s3_error!(
            InvalidLocationConstraint,
            "The specified location-constraint {r} is not valid"
        ),
        E::PreconditionFailed => {
            s3_error!(
                PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold"
            )
        }
        E::NotModified => s3_error!(NotModified),
        E::InvalidRange => s3_error!(InvalidRange, "The requested range is not satisfiable"),
        E::BadDigest(m) => S3Error::with_message(S3ErrorCode::BadDigest, m),
        E::InvalidDigest => s3_error!(InvalidDigest, "The Content-MD5 you specified is not valid."),
        E::EntityTooLarge => s3_error!(
            EntityTooLarge,
            "Your proposed upload exceeds the maximum allowed size"
        ),
        E::EntityTooSmall => s3_error!(
            EntityTooSmall,
            "Your proposed upload is smaller than the minimum allowed object size."
        ),
        E::IncompleteBody => s3_error!(
            IncompleteBody,
            "You did not provide the number of bytes specified by the Content-Length HTTP header"
        ),
        E::RequestTimeout => s3_error!(
            RequestTimeout,
            "Your socket connection to the server was not read from or written to within the timeout period."
        ),
        E::InvalidPart(m) => S3Error::with_message(S3ErrorCode::InvalidPart, m),
        E::InvalidPartOrder => s3_error!(
            InvalidPartOrder,
            "The list of parts was not in ascending order. Parts must be ordered by part number."
        ),
        E::QuotaExceeded => {
            let mut err = S3Error::with_message(
                S3ErrorCode::Custom("QuotaExceeded".into()),
                "The organisation's storage quota does not allow this upload.",
            );
            err.set_status_code(http::StatusCode::FORBIDDEN);
            err
        }
        E::MethodNotAllowed => s3_error!(
            MethodNotAllowed,
            "The specified method is not allowed against this resource."
        ),
        E::Conflict(m) => S3Error::with_message(S3ErrorCode::OperationAborted, m),
        E::MalformedXml(m) => S3Error::with_message(S3ErrorCode::MalformedXML, m),
        E::MalformedPolicy(m) => S3Error::with_message(S3ErrorCode::MalformedPolicy, m),
        E::AccessControlListNotSupported => s3_error!(
            AccessControlListNotSupported,
            "The bucket does not allow ACLs"
        ),
        E::InvalidBucketAclWithObjectOwnership => s3_error!(
            InvalidBucketAclWithObjectOwnership,
            "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"
        ),
        E::NoSuchBucketPolicy => s3_error!(NoSuchBucketPolicy, "The bucket policy does not exist"),
        E::AccessDeniedBecause(m) => {
            S3Error::with_message(S3ErrorCode::AccessDenied, format!("Access Denied: {m}"))
        }
        E::InvalidBucketState(m) => S3Error::with_message(S3ErrorCode::InvalidBucketState, m),
        E::ObjectLockConfigurationNotFound => s3_error!(
            ObjectLockConfigurationNotFoundError,
            "Object Lock configuration does not exist for this bucket"
        ),
        E::NoSuchObjectLockConfiguration => s3_error!(
            NoSuchObjectLockConfiguration,
            "The specified object does not have a ObjectLock configuration"
        ),
        E::ObjectLocked(m) => S3Error::with_message(
            S3ErrorCode::AccessDenied,
            format!("Access Denied because object protected by object lock: {m}"),
        ),
        E::NoSuchTagSet => s3_error!(NoSuchTagSet, "The TagSet does not exist"),
        E::NoSuchCorsConfiguration => {
            s3_error!(
                NoSuchCORSConfiguration,
                "The CORS configuration does not exist"
            )
        }
        E::NoSuchWebsiteConfiguration => {
            s3_error!(
                NoSuchWebsiteConfiguration,
                "The specified bucket does not have a website configuration"
            )
        }
        E::NoSuchLifecycleConfiguration => {
            s3_error!(
                NoSuchLifecycleConfiguration,
                "The lifecycle configuration does not exist"
            )
        }
        E::CustomerKeyRequired => s3_error!(
            InvalidRequest,
            "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object."
        ),
        E::CustomerKeyMismatch => s3_error!(
            AccessDenied,
            "The provided customer key does not match the one the object was stored with."
        ),
        E::Corrupt => {
            tracing::error!("stored data failed its integrity check");
            s3_error!(
                InternalError,
                "We encountered an internal error. Please try again."
            )
        }
        E::Service(e) => {
            if e.is_server_fault() {
                tracing::error!(error = %e, "storage operation failed");
                s3_error!(
                    InternalError,
                    "We encountered an internal error. Please try again."
                )
            } else {
                S3Error::with_message(S3ErrorCode::InvalidRequest, e.to_string())
            }
        }
    }
}
