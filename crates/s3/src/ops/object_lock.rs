//! Object Lock: a bucket's configuration, a version's retention and legal
//! hold, and the lock headers of writes and reads.

use nuage_domain::object_lock::{
    DefaultRetention, ObjectLockConfig, Retention, RetentionMode, VersionLock,
};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::{Call, NuageS3};
use crate::convert;

/// [`lock_in`] of a write's input (PutObject, CopyObject and
/// CreateMultipartUpload have the same three fields).
macro_rules! lock_request {
    ($i:expr) => {
        $crate::ops::object_lock::lock_in(
            $i.object_lock_mode.as_ref().map(|m| m.as_str()),
            $i.object_lock_retain_until_date,
            $i.object_lock_legal_hold_status
                .as_ref()
                .map(|s| s.as_str()),
        )
    };
}
pub(super) use lock_request;

/// The lock a write asks for with its `x-amz-object-lock-*` headers: a mode
/// and a date go together.
pub(super) fn lock_in(
    mode: Option<&str>,
    until: Option<Timestamp>,
    legal_hold: Option<&str>,
) -> S3Result<VersionLock> {
    let retention = match (mode, until) {
        (None, None) => None,
        (Some(mode), Some(until)) => Some(Retention {
            mode: RetentionMode::parse(mode).map_err(|e| {
                s3s::S3Error::with_message(s3s::S3ErrorCode::InvalidArgument, e.to_string())
            })?,
            until_ms: convert::millis(until),
        }),
        _ => {
            return Err(s3_error!(
                InvalidArgument,
                "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied"
            ));
        }
    };
    Ok(VersionLock {
        retention,
        legal_hold: legal_hold_in(legal_hold)?.unwrap_or(false),
    })
}

fn legal_hold_in(status: Option<&str>) -> S3Result<Option<bool>> {
    match status {
        None => Ok(None),
        Some(ObjectLockLegalHoldStatus::ON) => Ok(Some(true)),
        Some(ObjectLockLegalHoldStatus::OFF) => Ok(Some(false)),
        Some(_) => Err(s3_error!(
            InvalidArgument,
            "The legal hold status is ON or OFF"
        )),
    }
}

/// Locking the owner's data for years is the owner's decision: a write a
/// policy grants sets no lock.
pub(super) fn refuse_for_grantee(call: &Call<'_>, lock: &VersionLock) -> S3Result<()> {
    if call.granted && !lock.is_empty() {
        return Err(s3_error!(
            AccessDenied,
            "Access Denied: only the bucket's owner sets Object Lock retention or legal holds"
        ));
    }
    Ok(())
}

/// A write that sets a lock must carry a digest of its body, as on AWS.
pub(super) fn require_digest(
    lock: &VersionLock,
    content_md5: bool,
    checksum: bool,
) -> S3Result<()> {
    if !lock.is_empty() && !content_md5 && !checksum {
        return Err(s3_error!(
            InvalidRequest,
            "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters"
        ));
    }
    Ok(())
}

/// The `x-amz-object-lock-*` headers of a read: mode, date, legal hold.
pub(super) fn lock_out(
    lock: &VersionLock,
) -> (
    Option<ObjectLockMode>,
    Option<Timestamp>,
    Option<ObjectLockLegalHoldStatus>,
) {
    (
        lock.retention
            .map(|r| ObjectLockMode::from(r.mode.as_str().to_owned())),
        lock.retention.map(|r| convert::timestamp(r.until_ms)),
        lock.legal_hold
            .then(|| ObjectLockLegalHoldStatus::from(ObjectLockLegalHoldStatus::ON.to_owned())),
    )
}

pub(super) async fn get_object_lock_configuration(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<GetObjectLockConfigurationInput>,
) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
    let config = call.done(
        s3.storage
            .object_lock_configuration(&call.caller, &req.input.bucket)
            .await,
    )?;
    let rule = config.default_retention.map(|d| {
        let (days, years) = match d.period {
            nuage_domain::object_lock::RetentionPeriod::Days(n) => (Some(n as i32), None),
            nuage_domain::object_lock::RetentionPeriod::Years(n) => (None, Some(n as i32)),
        };
        ObjectLockRule {
            default_retention: Some(s3s::dto::DefaultRetention {
                mode: Some(ObjectLockRetentionMode::from(d.mode.as_str().to_owned())),
                days,
                years,
            }),
        }
    });
    Ok(S3Response::new(GetObjectLockConfigurationOutput {
        object_lock_configuration: Some(ObjectLockConfiguration {
            object_lock_enabled: Some(ObjectLockEnabled::from(
                ObjectLockEnabled::ENABLED.to_owned(),
            )),
            rule,
        }),
    }))
}

pub(super) async fn put_object_lock_configuration(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<PutObjectLockConfigurationInput>,
) -> S3Result<S3Response<PutObjectLockConfigurationOutput>> {
    let i = req.input;
    let c = i
        .object_lock_configuration
        .ok_or_else(|| s3_error!(MalformedXML, "the request has no ObjectLockConfiguration"))?;
    if c.object_lock_enabled.as_ref().map(|e| e.as_str()) != Some(ObjectLockEnabled::ENABLED) {
        return Err(s3_error!(
            MalformedXML,
            "ObjectLockEnabled must be Enabled: Object Lock cannot be turned off"
        ));
    }
    let default_retention = match c.rule.and_then(|r| r.default_retention) {
        None => None,
        Some(d) => Some(
            DefaultRetention::parse(d.mode.as_ref().map(|m| m.as_str()), d.days, d.years)
                .map_err(|e| crate::error::s3(e.into()))?,
        ),
    };
    call.done(
        s3.storage
            .set_object_lock_configuration(
                &call.caller,
                &i.bucket,
                ObjectLockConfig { default_retention },
            )
            .await,
    )?;
    Ok(S3Response::new(PutObjectLockConfigurationOutput::default()))
}

pub(super) async fn get_object_retention(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<GetObjectRetentionInput>,
) -> S3Result<S3Response<GetObjectRetentionOutput>> {
    let i = req.input;
    let lock = call.done(
        s3.storage
            .version_lock(&call.caller, &i.bucket, &i.key, i.version_id.as_deref())
            .await
            .and_then(|l| {
                l.retention
                    .ok_or(nuage_storage::StorageError::NoSuchObjectLockConfiguration)
            }),
    )?;
    Ok(S3Response::new(GetObjectRetentionOutput {
        retention: Some(ObjectLockRetention {
            mode: Some(ObjectLockRetentionMode::from(lock.mode.as_str().to_owned())),
            retain_until_date: Some(convert::timestamp(lock.until_ms)),
        }),
    }))
}

pub(super) async fn put_object_retention(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<PutObjectRetentionInput>,
) -> S3Result<S3Response<PutObjectRetentionOutput>> {
    let bypass = s3
        .may_bypass(
            &req,
            &call,
            &req.input.key,
            req.input.bypass_governance_retention,
        )
        .await?;
    let i = req.input;
    let retention = match i.retention {
        None => None,
        Some(r) => match (r.mode, r.retain_until_date) {
            (None, None) => None,
            (Some(mode), Some(until)) => Some(Retention {
                mode: RetentionMode::parse(mode.as_str())
                    .map_err(|e| crate::error::s3(e.into()))?,
                until_ms: convert::millis(until),
            }),
            _ => {
                return Err(s3_error!(
                    MalformedXML,
                    "a retention has both a Mode and a RetainUntilDate, or neither"
                ));
            }
        },
    };
    call.done(
        s3.storage
            .set_retention(
                &call.caller,
                (&i.bucket, &i.key, i.version_id.as_deref()),
                retention,
                bypass,
            )
            .await,
    )?;
    Ok(S3Response::new(PutObjectRetentionOutput::default()))
}

pub(super) async fn get_object_legal_hold(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<GetObjectLegalHoldInput>,
) -> S3Result<S3Response<GetObjectLegalHoldOutput>> {
    let i = req.input;
    let lock = call.done(
        s3.storage
            .version_lock(&call.caller, &i.bucket, &i.key, i.version_id.as_deref())
            .await,
    )?;
    let status = if lock.legal_hold {
        ObjectLockLegalHoldStatus::ON
    } else {
        ObjectLockLegalHoldStatus::OFF
    };
    Ok(S3Response::new(GetObjectLegalHoldOutput {
        legal_hold: Some(ObjectLockLegalHold {
            status: Some(ObjectLockLegalHoldStatus::from(status.to_owned())),
        }),
    }))
}

pub(super) async fn put_object_legal_hold(
    s3: &NuageS3,
    call: Call<'_>,
    req: S3Request<PutObjectLegalHoldInput>,
) -> S3Result<S3Response<PutObjectLegalHoldOutput>> {
    let i = req.input;
    let status = i.legal_hold.and_then(|h| h.status);
    let on = legal_hold_in(status.as_ref().map(|s| s.as_str()))?
        .ok_or_else(|| s3_error!(MalformedXML, "the legal hold has no Status"))?;
    call.done(
        s3.storage
            .set_legal_hold(
                &call.caller,
                (&i.bucket, &i.key, i.version_id.as_deref()),
                on,
            )
            .await,
    )?;
    Ok(S3Response::new(PutObjectLegalHoldOutput::default()))
}
