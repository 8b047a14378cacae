//! Object Lock through aws-sdk-s3, as backup software uses it: buckets with
//! Object Lock, retention in both modes, legal holds, default retention,
//! and the paths that would delete a locked version (S3 deletes, lifecycle,
//! bucket deletion), on a server whose clock the test moves.

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    BucketVersioningStatus, DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled,
    ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockMode, ObjectLockRetention,
    ObjectLockRetentionMode, ObjectLockRule, VersioningConfiguration,
};

use crate::helpers::{Tenant, TestApp, create_bucket, put, s3_code, spawn_at, wall_clock_ms};

const DAY: i64 = 86_400_000;

/// A server frozen at the real time, a tenant, its client, and a bucket
/// created with Object Lock.
async fn locked_bucket(name: &str) -> (TestApp, Tenant, aws_sdk_s3::Client, i64) {
    let now = wall_clock_ms();
    let app = spawn_at(now).await;
    let t = app.tenant("Backups").await;
    let s3 = app.s3_client(&t);
    s3.create_bucket()
        .bucket(name)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .expect("bucket with Object Lock");
    (app, t, s3, now)
}

/// Puts `key` with a retention of `mode` until `until` (ms).
async fn put_retained(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    mode: ObjectLockMode,
    until: i64,
) -> String {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .object_lock_mode(mode)
        .object_lock_retain_until_date(DateTime::from_millis(until))
        .body(ByteStream::from_static(b"backup"))
        .send()
        .await
        .expect("retained put")
        .version_id()
        .expect("a version")
        .to_owned()
}

async fn delete_version(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version: &str,
    bypass: bool,
) -> String {
    match s3
        .delete_object()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .bypass_governance_retention(bypass)
        .send()
        .await
    {
        Ok(_) => "deleted".into(),
        Err(e) => s3_code::<_, ()>(Err(e)),
    }
}

/// A multipart upload of one part into `vault`, asking for `lock` if given.
async fn upload_in_one_part(
    s3: &aws_sdk_s3::Client,
    key: &str,
    lock: Option<(ObjectLockMode, i64)>,
) {
    let mut create = s3.create_multipart_upload().bucket("vault").key(key);
    if let Some((mode, until)) = lock {
        create = create
            .object_lock_mode(mode)
            .object_lock_retain_until_date(DateTime::from_millis(until));
    }
    let upload = create.send().await.expect("upload");
    let id = upload.upload_id().expect("id");
    let part = s3
        .upload_part()
        .bucket("vault")
        .key(key)
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from_static(b"part"))
        .send()
        .await
        .expect("part");
    s3.complete_multipart_upload()
        .bucket("vault")
        .key(key)
        .upload_id(id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .parts(
                    aws_sdk_s3::types::CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().expect("etag"))
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("complete");
}

fn retention(mode: ObjectLockRetentionMode, until: i64) -> ObjectLockRetention {
    ObjectLockRetention::builder()
        .mode(mode)
        .retain_until_date(DateTime::from_millis(until))
        .build()
}

#[tokio::test]
async fn a_bucket_with_object_lock_is_versioned_for_good() {
    let (_app, _t, s3, _) = locked_bucket("vault").await;
    let versioning = s3
        .get_bucket_versioning()
        .bucket("vault")
        .send()
        .await
        .expect("versioning");
    assert_eq!(versioning.status(), Some(&BucketVersioningStatus::Enabled));
    let config = s3
        .get_object_lock_configuration()
        .bucket("vault")
        .send()
        .await
        .expect("configuration");
    let config = config.object_lock_configuration().expect("present");
    assert_eq!(
        config.object_lock_enabled(),
        Some(&ObjectLockEnabled::Enabled)
    );
    assert!(config.rule().is_none(), "no default retention yet");
    let suspend = s3
        .put_bucket_versioning()
        .bucket("vault")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await;
    assert_eq!(s3_code(suspend), "InvalidBucketState");
    // A bucket without Object Lock has no configuration to read, and takes
    // no lock on its objects.
    create_bucket(&s3, "plain").await;
    assert_eq!(
        s3_code(
            s3.get_object_lock_configuration()
                .bucket("plain")
                .send()
                .await
        ),
        "ObjectLockConfigurationNotFoundError"
    );
    let locked_put = s3
        .put_object()
        .bucket("plain")
        .key("k")
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(s3_code(locked_put), "InvalidRequest");
    put(&s3, "plain", "k", ByteStream::from_static(b"x")).await;
    assert_eq!(
        s3_code(
            s3.get_object_retention()
                .bucket("plain")
                .key("k")
                .send()
                .await
        ),
        "InvalidRequest"
    );
    // Object Lock on an existing bucket needs versioning first.
    let enable = |bucket: &'static str| {
        s3.put_object_lock_configuration()
            .bucket(bucket)
            .object_lock_configuration(
                ObjectLockConfiguration::builder()
                    .object_lock_enabled(ObjectLockEnabled::Enabled)
                    .build(),
            )
            .send()
    };
    assert_eq!(s3_code(enable("plain").await), "InvalidBucketState");
    s3.put_bucket_versioning()
        .bucket("plain")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("versioning on");
    enable("plain").await.expect("Object Lock on");
    s3.get_object_lock_configuration()
        .bucket("plain")
        .send()
        .await
        .expect("now it has one");
}

#[tokio::test]
async fn compliance_retention_keeps_a_version_from_everyone_until_its_date() {
    let (app, _t, s3, now) = locked_bucket("vault").await;
    let until = now + 2 * DAY;
    let v1 = put_retained(&s3, "vault", "db.dump", ObjectLockMode::Compliance, until).await;
    let head = s3
        .head_object()
        .bucket("vault")
        .key("db.dump")
        .send()
        .await
        .expect("head");
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Compliance));
    assert_eq!(
        head.object_lock_retain_until_date()
            .map(|d| d.to_millis().expect("ms") / 1000),
        Some(until / 1000)
    );
    // Neither a delete of the version, with or without the bypass...
    assert_eq!(
        delete_version(&s3, "vault", "db.dump", &v1, false).await,
        "AccessDenied"
    );
    assert_eq!(
        delete_version(&s3, "vault", "db.dump", &v1, true).await,
        "AccessDenied"
    );
    // ...nor shortening, lifting or weakening its retention.
    for (change, bypass) in [
        (
            Some(retention(ObjectLockRetentionMode::Compliance, until - DAY)),
            true,
        ),
        (
            Some(retention(ObjectLockRetentionMode::Governance, until + DAY)),
            true,
        ),
        (None, true),
    ] {
        let mut req = s3
            .put_object_retention()
            .bucket("vault")
            .key("db.dump")
            .bypass_governance_retention(bypass);
        req = match change {
            Some(r) => req.retention(r),
            None => req.retention(ObjectLockRetention::builder().build()),
        };
        assert_eq!(s3_code(req.send().await), "AccessDenied");
    }
    // A plain DELETE still adds a delete marker, as on AWS: nothing is lost.
    let marker = s3
        .delete_object()
        .bucket("vault")
        .key("db.dump")
        .send()
        .await
        .expect("delete marker");
    assert_eq!(marker.delete_marker(), Some(true));
    // The bucket holds the version: it cannot be deleted.
    assert_eq!(
        s3_code(s3.delete_bucket().bucket("vault").send().await),
        "BucketNotEmpty"
    );
    // Lengthening is allowed, and read back.
    let later = until + 3 * DAY;
    s3.put_object_retention()
        .bucket("vault")
        .key("db.dump")
        .version_id(&v1)
        .retention(retention(ObjectLockRetentionMode::Compliance, later))
        .send()
        .await
        .expect("lengthened");
    let read = s3
        .get_object_retention()
        .bucket("vault")
        .key("db.dump")
        .version_id(&v1)
        .send()
        .await
        .expect("retention");
    let read = read.retention().expect("retention");
    assert_eq!(read.mode(), Some(&ObjectLockRetentionMode::Compliance));
    assert_eq!(
        read.retain_until_date()
            .map(|d| d.to_millis().expect("ms") / 1000),
        Some(later / 1000)
    );
    // Once the date has passed, the version can go.
    app.set_clock(until + DAY).await;
    assert_eq!(
        delete_version(&s3, "vault", "db.dump", &v1, false).await,
        "AccessDenied"
    );
    app.set_clock(later + 1000).await;
    assert_eq!(
        delete_version(&s3, "vault", "db.dump", &v1, false).await,
        "deleted"
    );
}

#[tokio::test]
async fn governance_retention_gives_way_only_to_the_bypass() {
    let (_app, _t, s3, now) = locked_bucket("vault").await;
    let until = now + 5 * DAY;
    let v1 = put_retained(&s3, "vault", "a", ObjectLockMode::Governance, until).await;
    assert_eq!(
        delete_version(&s3, "vault", "a", &v1, false).await,
        "AccessDenied"
    );
    let shorten = |bypass: bool| {
        s3.put_object_retention()
            .bucket("vault")
            .key("a")
            .version_id(&v1)
            .bypass_governance_retention(bypass)
            .retention(retention(ObjectLockRetentionMode::Governance, now + DAY))
            .send()
    };
    assert_eq!(s3_code(shorten(false).await), "AccessDenied");
    // The bypass is a permission: a bucket policy that denies it leaves
    // governance as strict as compliance, for the owner's keys too.
    let deny_bypass = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Deny", "Principal": "*", "Action": "s3:BypassGovernanceRetention",
            "Resource": "arn:aws:s3:::vault/*"
        }]
    })
    .to_string();
    s3.put_bucket_policy()
        .bucket("vault")
        .policy(deny_bypass)
        .send()
        .await
        .expect("policy");
    assert_eq!(s3_code(shorten(true).await), "AccessDenied");
    assert_eq!(
        delete_version(&s3, "vault", "a", &v1, true).await,
        "AccessDenied"
    );
    s3.delete_bucket_policy()
        .bucket("vault")
        .send()
        .await
        .expect("policy deleted");
    shorten(true).await.expect("shortened with the bypass");
    assert_eq!(
        delete_version(&s3, "vault", "a", &v1, true).await,
        "deleted"
    );
    // DeleteObjects carries the bypass for every key, and reports a
    // locked key as its error.
    let v2 = put_retained(&s3, "vault", "b", ObjectLockMode::Governance, until).await;
    let batch = |bypass: bool| {
        s3.delete_objects()
            .bucket("vault")
            .bypass_governance_retention(bypass)
            .delete(
                aws_sdk_s3::types::Delete::builder()
                    .objects(
                        aws_sdk_s3::types::ObjectIdentifier::builder()
                            .key("b")
                            .version_id(&v2)
                            .build()
                            .expect("identifier"),
                    )
                    .build()
                    .expect("delete"),
            )
            .send()
    };
    let refused = batch(false).await.expect("batch");
    assert_eq!(refused.errors().len(), 1);
    assert_eq!(refused.errors()[0].code(), Some("AccessDenied"));
    let done = batch(true).await.expect("batch");
    assert!(done.errors().is_empty());
    assert_eq!(done.deleted().len(), 1);
}

#[tokio::test]
async fn a_legal_hold_keeps_a_version_until_it_is_lifted() {
    let (app, _t, s3, now) = locked_bucket("vault").await;
    let v1 = s3
        .put_object()
        .bucket("vault")
        .key("evidence")
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .body(ByteStream::from_static(b"exhibit"))
        .send()
        .await
        .expect("put under hold")
        .version_id()
        .expect("version")
        .to_owned();
    let hold = |status: ObjectLockLegalHoldStatus| {
        s3.put_object_legal_hold()
            .bucket("vault")
            .key("evidence")
            .legal_hold(ObjectLockLegalHold::builder().status(status).build())
            .send()
    };
    let read = || async {
        s3.get_object_legal_hold()
            .bucket("vault")
            .key("evidence")
            .send()
            .await
            .expect("legal hold")
            .legal_hold()
            .and_then(|h| h.status())
            .cloned()
    };
    assert_eq!(read().await, Some(ObjectLockLegalHoldStatus::On));
    // No date ends a hold: years later, with the bypass, it still holds.
    app.set_clock(now + 3650 * DAY).await;
    assert_eq!(
        delete_version(&s3, "vault", "evidence", &v1, true).await,
        "AccessDenied"
    );
    hold(ObjectLockLegalHoldStatus::Off).await.expect("lifted");
    assert_eq!(read().await, Some(ObjectLockLegalHoldStatus::Off));
    assert_eq!(
        delete_version(&s3, "vault", "evidence", &v1, false).await,
        "deleted"
    );
    // A hold on a key that does not exist answers as S3 does.
    assert_eq!(
        s3_code(hold(ObjectLockLegalHoldStatus::On).await),
        "NoSuchKey"
    );
}

#[tokio::test]
async fn default_retention_locks_every_new_version_however_written() {
    let (_app, _t, s3, now) = locked_bucket("vault").await;
    let set = |days: Option<i32>, years: Option<i32>| {
        let mut d = DefaultRetention::builder().mode(ObjectLockRetentionMode::Governance);
        if let Some(days) = days {
            d = d.days(days);
        }
        if let Some(years) = years {
            d = d.years(years);
        }
        s3.put_object_lock_configuration()
            .bucket("vault")
            .object_lock_configuration(
                ObjectLockConfiguration::builder()
                    .object_lock_enabled(ObjectLockEnabled::Enabled)
                    .rule(
                        ObjectLockRule::builder()
                            .default_retention(d.build())
                            .build(),
                    )
                    .build(),
            )
            .send()
    };
    assert_eq!(s3_code(set(Some(1), Some(1)).await), "MalformedXML");
    assert_eq!(s3_code(set(Some(0), None).await), "InvalidArgument");
    set(Some(3), None).await.expect("default retention");
    let rule = s3
        .get_object_lock_configuration()
        .bucket("vault")
        .send()
        .await
        .expect("configuration");
    let d = rule
        .object_lock_configuration()
        .and_then(|c| c.rule())
        .and_then(|r| r.default_retention())
        .expect("default retention");
    assert_eq!(d.days(), Some(3));
    assert_eq!(d.mode(), Some(&ObjectLockRetentionMode::Governance));
    let expected = (now + 3 * DAY) / 1000;
    let until = |key: &'static str| {
        let s3 = s3.clone();
        async move {
            let r = s3
                .get_object_retention()
                .bucket("vault")
                .key(key)
                .send()
                .await
                .expect("retention");
            let r = r.retention().expect("retention").clone();
            (
                r.mode().cloned(),
                r.retain_until_date()
                    .map(|d| d.to_millis().expect("ms") / 1000),
            )
        }
    };
    // A put, a copy and a multipart upload all get it...
    put(&s3, "vault", "put", ByteStream::from_static(b"one")).await;
    s3.copy_object()
        .bucket("vault")
        .key("copy")
        .copy_source("vault/put")
        .send()
        .await
        .expect("copy");
    upload_in_one_part(&s3, "multi", None).await;
    for key in ["put", "copy", "multi"] {
        assert_eq!(
            until(key).await,
            (Some(ObjectLockRetentionMode::Governance), Some(expected)),
            "{key}"
        );
    }
    // ...unless the write asks for its own: here a multipart upload that
    // asks for compliance.
    let own = now + 10 * DAY;
    upload_in_one_part(&s3, "own", Some((ObjectLockMode::Compliance, own))).await;
    assert_eq!(
        until("own").await,
        (Some(ObjectLockRetentionMode::Compliance), Some(own / 1000))
    );
    // A retention that has already ended is refused.
    let past = s3
        .put_object()
        .bucket("vault")
        .key("past")
        .object_lock_mode(ObjectLockMode::Governance)
        .object_lock_retain_until_date(DateTime::from_millis(now - DAY))
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(s3_code(past), "InvalidArgument");
}

#[tokio::test]
async fn lifecycle_rules_leave_locked_versions_alone() {
    use aws_sdk_s3::types::{
        BucketLifecycleConfiguration, ExpirationStatus, LifecycleRule, LifecycleRuleFilter,
        NoncurrentVersionExpiration,
    };
    let (app, _t, s3, now) = locked_bucket("vault").await;
    let v1 = put_retained(
        &s3,
        "vault",
        "log",
        ObjectLockMode::Compliance,
        now + 10 * DAY,
    )
    .await;
    put(&s3, "vault", "log", ByteStream::from_static(b"newer")).await;
    s3.put_bucket_lifecycle_configuration()
        .bucket("vault")
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(
                    LifecycleRule::builder()
                        .id("old")
                        .status(ExpirationStatus::Enabled)
                        .filter(LifecycleRuleFilter::builder().prefix("").build())
                        .noncurrent_version_expiration(
                            NoncurrentVersionExpiration::builder()
                                .noncurrent_days(1)
                                .build(),
                        )
                        .build()
                        .expect("rule"),
                )
                .build()
                .expect("lifecycle"),
        )
        .send()
        .await
        .expect("lifecycle");
    let versions = || async {
        s3.list_object_versions()
            .bucket("vault")
            .send()
            .await
            .expect("versions")
            .versions()
            .iter()
            .filter_map(|v| v.version_id().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    app.set_clock(now + 3 * DAY).await;
    let report = app.maintain().await;
    assert_eq!(report["versions_locked"], 1, "{report}");
    assert!(versions().await.contains(&v1), "the locked version stays");
    app.set_clock(now + 11 * DAY).await;
    let report = app.maintain().await;
    assert_eq!(report["versions_expired"], 1, "{report}");
    assert!(!versions().await.contains(&v1), "then lifecycle takes it");
}

#[tokio::test]
async fn a_put_that_sets_a_lock_carries_a_digest_of_its_body() {
    let (app, t, _s3, now) = locked_bucket("vault").await;
    let until = time::OffsetDateTime::from_unix_timestamp((now + DAY) / 1000)
        .expect("date")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formatted");
    let url = format!("{}/vault/signed", app.s3);
    let put = |digest: Option<(&'static str, String)>| {
        let mut headers = vec![
            ("x-amz-object-lock-mode".to_owned(), "GOVERNANCE".to_owned()),
            (
                "x-amz-object-lock-retain-until-date".to_owned(),
                until.clone(),
            ),
        ];
        if let Some((name, value)) = digest {
            headers.push((name.to_owned(), value));
        }
        let signed =
            crate::helpers::sign_request(&t, "PUT", &url, &headers, b"locked").expect("signed");
        let mut request = reqwest::Client::new().put(&url).body("locked");
        for (k, v) in headers.iter().chain(&signed) {
            request = request.header(k, v);
        }
        request.send()
    };
    let refused = put(None).await.expect("answer");
    assert_eq!(refused.status(), 400);
    let body = refused.text().await.expect("body");
    assert!(body.contains("<Code>InvalidRequest</Code>"), "{body}");
    assert!(body.contains("Content-MD5"), "{body}");
    use base64::Engine;
    use md5::Digest;
    let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(b"locked"));
    let stored = put(Some(("content-md5", md5))).await.expect("answer");
    assert_eq!(
        stored.status(),
        200,
        "{}",
        stored.text().await.unwrap_or_default()
    );
}
