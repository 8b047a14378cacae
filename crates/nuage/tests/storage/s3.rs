//! The S3 API driven by aws-sdk-s3 against the real server: buckets,
//! objects, checksums, conditional requests, versioning, listing,
//! multipart uploads, copies, presigned URLs, lifecycle, quotas and the
//! access log.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, ChecksumAlgorithm, ChecksumMode,
    CompletedMultipartUpload, CompletedPart, CreateBucketConfiguration, Delete, ObjectIdentifier,
    Tag, Tagging, VersioningConfiguration,
};
use md5::Digest;
use reqwest::Method;

use crate::helpers::{create_bucket, get_bytes, put, s3_code, spawn_app};

fn md5_hex(data: &[u8]) -> String {
    hex::encode(md5::Md5::digest(data))
}

fn unquote(etag: Option<&str>) -> String {
    etag.unwrap_or_default().trim_matches('"').to_owned()
}

#[tokio::test]
async fn buckets_are_global_and_listed_per_organisation() {
    let app = spawn_app().await;
    let a = app.tenant("Alpha").await;
    let b = app.tenant("Beta").await;
    let (sa, sb) = (app.s3_client(&a), app.s3_client(&b));

    create_bucket(&sa, "alpha-data").await;
    sa.head_bucket()
        .bucket("alpha-data")
        .send()
        .await
        .expect("head");
    assert_eq!(
        s3_code(sa.create_bucket().bucket("alpha-data").send().await),
        "BucketAlreadyOwnedByYou"
    );
    assert_eq!(
        s3_code(sb.create_bucket().bucket("alpha-data").send().await),
        "BucketAlreadyExists"
    );
    assert_eq!(
        s3_code(sa.create_bucket().bucket("Bad_Name").send().await),
        "InvalidBucketName"
    );
    let elsewhere = CreateBucketConfiguration::builder()
        .location_constraint(BucketLocationConstraint::from("mars-1"))
        .build();
    assert_eq!(
        s3_code(
            sa.create_bucket()
                .bucket("alpha-mars")
                .create_bucket_configuration(elsewhere)
                .send()
                .await
        ),
        "InvalidLocationConstraint"
    );
    let here = CreateBucketConfiguration::builder()
        .location_constraint(BucketLocationConstraint::from("fr-par"))
        .build();
    sa.create_bucket()
        .bucket("alpha-paris")
        .create_bucket_configuration(here)
        .send()
        .await
        .expect("declared region");
    let location = sa
        .get_bucket_location()
        .bucket("alpha-paris")
        .send()
        .await
        .expect("location");
    assert_eq!(
        location.location_constraint().map(|l| l.as_str()),
        Some("fr-par")
    );

    create_bucket(&sb, "beta-data").await;
    let names = |l: aws_sdk_s3::operation::list_buckets::ListBucketsOutput| -> Vec<String> {
        l.buckets()
            .iter()
            .filter_map(|b| b.name().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        names(sa.list_buckets().send().await.expect("list")),
        ["alpha-data", "alpha-paris"]
    );
    assert_eq!(
        names(sb.list_buckets().send().await.expect("list")),
        ["beta-data"]
    );

    put(&sa, "alpha-data", "k", ByteStream::from_static(b"x")).await;
    assert_eq!(
        s3_code(sa.delete_bucket().bucket("alpha-data").send().await),
        "BucketNotEmpty"
    );
    sa.delete_object()
        .bucket("alpha-data")
        .key("k")
        .send()
        .await
        .expect("delete object");
    sa.delete_bucket()
        .bucket("alpha-data")
        .send()
        .await
        .expect("delete empty bucket");
    assert_eq!(
        s3_code(sa.head_bucket().bucket("alpha-data").send().await),
        "NotFound"
    );
    // The name is free again, for anyone.
    create_bucket(&sb, "alpha-data").await;
}

#[tokio::test]
async fn objects_round_trip_with_their_headers_checksums_and_conditions() {
    let app = spawn_app().await;
    let t = app.tenant("Objects").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "objects").await;

    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let put = s3
        .put_object()
        .bucket("objects")
        .key("docs/report.bin")
        .body(ByteStream::from(body.clone()))
        .content_type("application/x-report")
        .content_disposition("attachment; filename=\"report.bin\"")
        .cache_control("max-age=60")
        .metadata("Owner", "service-achats")
        .send()
        .await
        .expect("put");
    assert_eq!(
        unquote(put.e_tag()),
        md5_hex(&body),
        "a single-part ETag is the MD5 of the content"
    );
    assert_eq!(
        put.server_side_encryption().map(|s| s.as_str()),
        Some("AES256")
    );

    let got = s3
        .get_object()
        .bucket("objects")
        .key("docs/report.bin")
        .send()
        .await
        .expect("get");
    assert_eq!(got.content_type(), Some("application/x-report"));
    assert_eq!(
        got.content_disposition(),
        Some("attachment; filename=\"report.bin\"")
    );
    assert_eq!(got.cache_control(), Some("max-age=60"));
    assert_eq!(
        got.metadata()
            .and_then(|m| m.get("owner"))
            .map(String::as_str),
        Some("service-achats")
    );
    assert_eq!(
        got.server_side_encryption().map(|s| s.as_str()),
        Some("AES256")
    );
    let etag = unquote(got.e_tag());
    assert_eq!(
        got.body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .as_ref(),
        body.as_slice()
    );

    // Ranges, including across the 64 KiB chunks content is sealed in.
    for (range, from, to) in [
        ("bytes=0-9", 0, 10),
        ("bytes=65530-65545", 65530, 65546),
        ("bytes=-7", 199_993, 200_000),
        ("bytes=199990-", 199_990, 200_000),
    ] {
        let r = s3
            .get_object()
            .bucket("objects")
            .key("docs/report.bin")
            .range(range)
            .send()
            .await
            .expect("range");
        assert_eq!(
            r.content_range(),
            Some(format!("bytes {}-{}/200000", from, to - 1).as_str())
        );
        assert_eq!(
            r.body.collect().await.expect("body").into_bytes().as_ref(),
            &body[from..to],
            "{range}"
        );
    }
    assert_eq!(
        s3_code(
            s3.get_object()
                .bucket("objects")
                .key("docs/report.bin")
                .range("bytes=300000-")
                .send()
                .await
        ),
        "InvalidRange"
    );

    // Conditional reads.
    let not_modified = s3
        .get_object()
        .bucket("objects")
        .key("docs/report.bin")
        .if_none_match(format!("\"{etag}\""))
        .send()
        .await;
    let status = not_modified
        .as_ref()
        .err()
        .and_then(|e| e.raw_response())
        .map(|r| r.status().as_u16());
    assert_eq!(status, Some(304));
    assert_eq!(
        s3_code(
            s3.get_object()
                .bucket("objects")
                .key("docs/report.bin")
                .if_match("\"0123\"")
                .send()
                .await
        ),
        "PreconditionFailed"
    );
    s3.get_object()
        .bucket("objects")
        .key("docs/report.bin")
        .if_match(format!("\"{etag}\""))
        .send()
        .await
        .expect("if-match");
    // Conditional writes, checked in the committing transaction: a failed
    // one changes nothing.
    assert_eq!(
        s3_code(
            s3.put_object()
                .bucket("objects")
                .key("docs/report.bin")
                .if_none_match("*")
                .body(ByteStream::from_static(b"overwrite"))
                .send()
                .await
        ),
        "PreconditionFailed"
    );
    assert_eq!(
        s3_code(
            s3.put_object()
                .bucket("objects")
                .key("docs/report.bin")
                .if_match("\"0123\"")
                .body(ByteStream::from_static(b"overwrite"))
                .send()
                .await
        ),
        "PreconditionFailed"
    );
    assert_eq!(
        s3_code(
            s3.put_object()
                .bucket("objects")
                .key("docs/absent")
                .if_match(format!("\"{etag}\""))
                .body(ByteStream::from_static(b"x"))
                .send()
                .await
        ),
        "NoSuchKey"
    );
    assert_eq!(
        s3_code(
            s3.put_object()
                .bucket("objects")
                .key("docs/absent")
                .if_none_match(format!("\"{etag}\""))
                .body(ByteStream::from_static(b"x"))
                .send()
                .await
        ),
        "InvalidArgument"
    );
    s3.put_object()
        .bucket("objects")
        .key("docs/once")
        .if_none_match("*")
        .body(ByteStream::from_static(b"first"))
        .send()
        .await
        .expect("if-none-match on a new key");
    let replaced = s3
        .put_object()
        .bucket("objects")
        .key("docs/once")
        .if_match(format!("\"{:x}\"", md5::Md5::digest(b"first")))
        .body(ByteStream::from_static(b"second"))
        .send()
        .await
        .expect("if-match with the current ETag");
    assert!(replaced.e_tag().is_some());
    let once = s3
        .get_object()
        .bucket("objects")
        .key("docs/once")
        .send()
        .await
        .expect("get");
    let second = once.body.collect().await.expect("body").into_bytes();
    assert_eq!(&second[..], b"second");
    s3.delete_object()
        .bucket("objects")
        .key("docs/once")
        .send()
        .await
        .expect("delete");
    let head = s3
        .head_object()
        .bucket("objects")
        .key("docs/report.bin")
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_length(), Some(200_000));

    // Checksums: checked on the way in and returned on the way out.
    for algorithm in [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32C,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ] {
        let key = format!("sum/{}", algorithm.as_str());
        let put = s3
            .put_object()
            .bucket("objects")
            .key(&key)
            .body(ByteStream::from(body.clone()))
            .checksum_algorithm(algorithm.clone())
            .send()
            .await
            .expect("put with checksum");
        let got = s3
            .get_object()
            .bucket("objects")
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .expect("get");
        let (sent, returned) = match algorithm {
            ChecksumAlgorithm::Crc32 => (
                put.checksum_crc32().map(str::to_owned),
                got.checksum_crc32().map(str::to_owned),
            ),
            ChecksumAlgorithm::Crc32C => (
                put.checksum_crc32_c().map(str::to_owned),
                got.checksum_crc32_c().map(str::to_owned),
            ),
            ChecksumAlgorithm::Sha1 => (
                put.checksum_sha1().map(str::to_owned),
                got.checksum_sha1().map(str::to_owned),
            ),
            _ => (
                put.checksum_sha256().map(str::to_owned),
                got.checksum_sha256().map(str::to_owned),
            ),
        };
        assert!(
            sent.is_some(),
            "{key}: the server returns the checksum it checked"
        );
        assert_eq!(sent, returned, "{key}");
        assert_eq!(
            got.body
                .collect()
                .await
                .expect("body")
                .into_bytes()
                .as_ref(),
            body.as_slice()
        );
    }

    // A wrong Content-MD5 stores nothing.
    let wrong = s3
        .put_object()
        .bucket("objects")
        .key("bad-digest")
        .body(ByteStream::from_static(b"payload"))
        .content_md5("1B2M2Y8AsgTpgAmY7PhCfg==")
        .send()
        .await;
    assert_eq!(s3_code(wrong), "BadDigest");
    assert_eq!(
        s3_code(
            s3.head_object()
                .bucket("objects")
                .key("bad-digest")
                .send()
                .await
        ),
        "NotFound"
    );
    assert_eq!(
        s3_code(
            s3.get_object()
                .bucket("objects")
                .key("nothing-here")
                .send()
                .await
        ),
        "NoSuchKey"
    );
    assert_eq!(
        s3_code(
            s3.get_object()
                .bucket("no-such-bucket")
                .key("k")
                .send()
                .await
        ),
        "NoSuchBucket"
    );
    let long_key = "k".repeat(1025);
    assert_eq!(
        s3_code(
            s3.put_object()
                .bucket("objects")
                .key(&long_key)
                .body(ByteStream::from_static(b"x"))
                .send()
                .await
        ),
        "KeyTooLongError"
    );

    // Tags.
    let tagging = Tagging::builder()
        .tag_set(
            Tag::builder()
                .key("classification")
                .value("internal")
                .build()
                .expect("tag"),
        )
        .build()
        .expect("tagging");
    s3.put_object_tagging()
        .bucket("objects")
        .key("docs/report.bin")
        .tagging(tagging)
        .send()
        .await
        .expect("tag");
    let tags = s3
        .get_object_tagging()
        .bucket("objects")
        .key("docs/report.bin")
        .send()
        .await
        .expect("tags");
    assert_eq!(tags.tag_set()[0].value(), "internal");

    // Copies: metadata kept, or replaced; copying onto itself unchanged is refused.
    let copy = s3
        .copy_object()
        .bucket("objects")
        .key("docs/copy.bin")
        .copy_source("objects/docs/report.bin")
        .send()
        .await
        .expect("copy");
    assert_eq!(
        unquote(copy.copy_object_result().and_then(|r| r.e_tag())),
        md5_hex(&body)
    );
    let copied = s3
        .head_object()
        .bucket("objects")
        .key("docs/copy.bin")
        .send()
        .await
        .expect("head copy");
    assert_eq!(copied.content_type(), Some("application/x-report"));
    s3.copy_object()
        .bucket("objects")
        .key("docs/copy.bin")
        .copy_source("objects/docs/copy.bin")
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .content_type("text/plain")
        .send()
        .await
        .expect("replace metadata in place");
    let replaced = s3
        .head_object()
        .bucket("objects")
        .key("docs/copy.bin")
        .send()
        .await
        .expect("head");
    assert_eq!(replaced.content_type(), Some("text/plain"));
    assert!(replaced.metadata().is_none_or(|m| m.is_empty()));
    assert_eq!(
        s3_code(
            s3.copy_object()
                .bucket("objects")
                .key("docs/copy.bin")
                .copy_source("objects/docs/copy.bin")
                .send()
                .await
        ),
        "InvalidRequest"
    );
    assert_eq!(
        s3_code(
            s3.copy_object()
                .bucket("objects")
                .key("docs/copy2.bin")
                .copy_source("objects/docs/report.bin")
                .copy_source_if_match("\"0000\"")
                .send()
                .await
        ),
        "PreconditionFailed"
    );

    // DeleteObjects reports each key.
    let delete = Delete::builder()
        .objects(
            ObjectIdentifier::builder()
                .key("docs/copy.bin")
                .build()
                .expect("id"),
        )
        .objects(
            ObjectIdentifier::builder()
                .key("never-existed")
                .build()
                .expect("id"),
        )
        .build()
        .expect("delete");
    let out = s3
        .delete_objects()
        .bucket("objects")
        .delete(delete)
        .send()
        .await
        .expect("delete objects");
    assert_eq!(out.deleted().len(), 2);
    assert_eq!(
        s3_code(
            s3.head_object()
                .bucket("objects")
                .key("docs/copy.bin")
                .send()
                .await
        ),
        "NotFound"
    );
}

#[tokio::test]
async fn versioning_keeps_every_version_and_delete_markers() {
    let app = spawn_app().await;
    let t = app.tenant("Versions").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "versions").await;
    put(&s3, "versions", "before", ByteStream::from_static(b"v0")).await;
    // Unversioned buckets list their objects as the "null" version.
    let listed = s3
        .list_object_versions()
        .bucket("versions")
        .send()
        .await
        .expect("versions");
    assert_eq!(listed.versions()[0].version_id(), Some("null"));

    s3.put_bucket_versioning()
        .bucket("versions")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("enable");
    let status = s3
        .get_bucket_versioning()
        .bucket("versions")
        .send()
        .await
        .expect("get versioning");
    assert_eq!(status.status(), Some(&BucketVersioningStatus::Enabled));

    let v1 = put(&s3, "versions", "doc", ByteStream::from_static(b"first")).await;
    let v2 = put(&s3, "versions", "doc", ByteStream::from_static(b"second")).await;
    let (v1, v2) = (
        v1.version_id().expect("id").to_owned(),
        v2.version_id().expect("id").to_owned(),
    );
    assert_ne!(v1, v2);
    let old = s3
        .get_object()
        .bucket("versions")
        .key("doc")
        .version_id(&v1)
        .send()
        .await
        .expect("old");
    assert_eq!(
        old.body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .as_ref(),
        b"first"
    );

    let marker = s3
        .delete_object()
        .bucket("versions")
        .key("doc")
        .send()
        .await
        .expect("delete");
    assert_eq!(marker.delete_marker(), Some(true));
    assert_eq!(
        s3_code(s3.get_object().bucket("versions").key("doc").send().await),
        "NoSuchKey"
    );
    let listed = s3
        .list_object_versions()
        .bucket("versions")
        .prefix("doc")
        .send()
        .await
        .expect("versions");
    assert_eq!(listed.versions().len(), 2);
    assert_eq!(listed.delete_markers().len(), 1);
    assert_eq!(listed.delete_markers()[0].is_latest(), Some(true));
    // Newest first within a key.
    assert_eq!(listed.versions()[0].version_id(), Some(v2.as_str()));

    // A folder whose only key is deleted is not listed as a common prefix.
    put(&s3, "versions", "gone/file", ByteStream::from_static(b"x")).await;
    s3.delete_object()
        .bucket("versions")
        .key("gone/file")
        .send()
        .await
        .expect("delete");
    let top = s3
        .list_objects_v2()
        .bucket("versions")
        .delimiter("/")
        .send()
        .await
        .expect("list");
    assert!(
        top.common_prefixes().is_empty(),
        "{:?}",
        top.common_prefixes()
    );

    // Deleting the marker brings the last version back.
    s3.delete_object()
        .bucket("versions")
        .key("doc")
        .version_id(marker.version_id().expect("marker id"))
        .send()
        .await
        .expect("remove marker");
    let back = s3
        .get_object()
        .bucket("versions")
        .key("doc")
        .send()
        .await
        .expect("restored");
    assert_eq!(
        back.body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .as_ref(),
        b"second"
    );
    // Deleting a version for good.
    s3.delete_object()
        .bucket("versions")
        .key("doc")
        .version_id(&v2)
        .send()
        .await
        .expect("delete v2");
    let now = s3
        .get_object()
        .bucket("versions")
        .key("doc")
        .send()
        .await
        .expect("v1 is latest");
    assert_eq!(
        now.body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .as_ref(),
        b"first"
    );
    assert_eq!(
        s3_code(
            s3.get_object()
                .bucket("versions")
                .key("doc")
                .version_id(&v2)
                .send()
                .await
        ),
        "NoSuchVersion"
    );
}

#[tokio::test]
async fn listings_page_fold_prefixes_and_sort_by_utf8_bytes() {
    let app = spawn_app().await;
    let t = app.tenant("Lists").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "lists").await;
    let mut keys = vec![
        "a/1",
        "a/2",
        "a/b/3",
        "b",
        "c d",
        "é",
        "z",
        "\u{10000}x",
        "ä/nested/deep",
    ];
    for k in &keys {
        put(&s3, "lists", *k, ByteStream::from_static(b".")).await;
    }
    keys.sort_by(|x, y| x.as_bytes().cmp(y.as_bytes()));

    // Pages of two, continued by token, give every key once, in byte order.
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket("lists")
            .max_keys(2)
            .set_continuation_token(token.clone())
            .send()
            .await
            .expect("page");
        assert!(page.contents().len() <= 2);
        seen.extend(
            page.contents()
                .iter()
                .map(|o| o.key().expect("key").to_owned()),
        );
        if page.is_truncated() != Some(true) {
            break;
        }
        token = page.next_continuation_token().map(str::to_owned);
    }
    assert_eq!(seen, keys);

    // An empty delimiter is none, as on AWS: nothing folded, nothing echoed.
    let flat = s3
        .list_objects_v2()
        .bucket("lists")
        .delimiter("")
        .send()
        .await
        .expect("flat");
    assert_eq!(flat.delimiter(), None);
    assert!(flat.common_prefixes().is_empty());
    assert_eq!(flat.contents().len(), keys.len());
    let flat = s3
        .list_objects()
        .bucket("lists")
        .delimiter("")
        .send()
        .await
        .expect("flat, v1");
    assert_eq!(flat.delimiter(), None);
    assert_eq!(flat.contents().len(), keys.len());
    let flat = s3
        .list_object_versions()
        .bucket("lists")
        .delimiter("")
        .send()
        .await
        .expect("flat versions");
    assert_eq!(flat.delimiter(), None);
    assert_eq!(flat.versions().len(), keys.len());

    // Folding by delimiter, with a prefix.
    let top = s3
        .list_objects_v2()
        .bucket("lists")
        .delimiter("/")
        .send()
        .await
        .expect("top");
    let prefixes: Vec<_> = top
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, ["a/", "ä/"]);
    let files: Vec<_> = top.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(files, ["b", "c d", "z", "é", "\u{10000}x"]);
    let under_a = s3
        .list_objects_v2()
        .bucket("lists")
        .prefix("a/")
        .delimiter("/")
        .send()
        .await
        .expect("a/");
    assert_eq!(
        under_a
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .collect::<Vec<_>>(),
        ["a/1", "a/2"]
    );
    assert_eq!(
        under_a
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix())
            .collect::<Vec<_>>(),
        ["a/b/"]
    );
    // Pages of one across prefixes: each prefix once.
    let mut entries = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket("lists")
            .delimiter("/")
            .max_keys(1)
            .set_continuation_token(token.clone())
            .send()
            .await
            .expect("page");
        entries.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        entries.extend(
            page.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(str::to_owned)),
        );
        if page.is_truncated() != Some(true) {
            break;
        }
        token = page.next_continuation_token().map(str::to_owned);
    }
    assert_eq!(entries, ["a/", "b", "c d", "z", "ä/", "é", "\u{10000}x"]);

    // start-after, v1 markers, and URL encoding.
    let after = s3
        .list_objects_v2()
        .bucket("lists")
        .start_after("b")
        .send()
        .await
        .expect("after");
    assert_eq!(after.contents()[0].key(), Some("c d"));
    let v1 = s3
        .list_objects()
        .bucket("lists")
        .marker("z")
        .send()
        .await
        .expect("v1");
    assert_eq!(
        v1.contents()
            .iter()
            .filter_map(|o| o.key())
            .collect::<Vec<_>>(),
        ["ä/nested/deep", "é", "\u{10000}x"]
    );
    // With encoding-type=url the keys come URL-encoded (the SDK leaves them so).
    let encoded = s3
        .list_objects_v2()
        .bucket("lists")
        .prefix("c")
        .encoding_type(aws_sdk_s3::types::EncodingType::Url)
        .send()
        .await
        .expect("encoded");
    assert_eq!(encoded.contents()[0].key(), Some("c%20d"));
}

#[tokio::test]
async fn multipart_uploads_complete_into_one_object() {
    let app = spawn_app().await;
    let t = app.tenant("Multipart").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "parts").await;
    let part1: Vec<u8> = (0..5 * 1024 * 1024u32).map(|i| (i % 199) as u8).collect();
    let part2 = b"the end".to_vec();

    let upload = s3
        .create_multipart_upload()
        .bucket("parts")
        .key("big")
        .content_type("video/mp4")
        .send()
        .await
        .expect("create");
    let id = upload.upload_id().expect("id").to_owned();
    let e1 = s3
        .upload_part()
        .bucket("parts")
        .key("big")
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(part1.clone()))
        .send()
        .await
        .expect("part 1");
    let e2 = s3
        .upload_part()
        .bucket("parts")
        .key("big")
        .upload_id(&id)
        .part_number(2)
        .body(ByteStream::from(part2.clone()))
        .send()
        .await
        .expect("part 2");
    let listed = s3
        .list_parts()
        .bucket("parts")
        .key("big")
        .upload_id(&id)
        .send()
        .await
        .expect("parts");
    assert_eq!(listed.parts().len(), 2);
    let uploads = s3
        .list_multipart_uploads()
        .bucket("parts")
        .send()
        .await
        .expect("uploads");
    assert_eq!(uploads.uploads()[0].upload_id(), Some(id.as_str()));

    let completed = |parts: Vec<(i32, String)>| {
        CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .into_iter()
                    .map(|(n, e)| CompletedPart::builder().part_number(n).e_tag(e).build())
                    .collect(),
            ))
            .build()
    };
    let wrong = completed(vec![
        (1, e1.e_tag().expect("etag").to_owned()),
        (2, "\"00000000000000000000000000000000\"".into()),
    ]);
    assert_eq!(
        s3_code(
            s3.complete_multipart_upload()
                .bucket("parts")
                .key("big")
                .upload_id(&id)
                .multipart_upload(wrong)
                .send()
                .await
        ),
        "InvalidPart"
    );
    let unordered = completed(vec![
        (2, e2.e_tag().expect("etag").to_owned()),
        (1, e1.e_tag().expect("etag").to_owned()),
    ]);
    assert_eq!(
        s3_code(
            s3.complete_multipart_upload()
                .bucket("parts")
                .key("big")
                .upload_id(&id)
                .multipart_upload(unordered)
                .send()
                .await
        ),
        "InvalidPartOrder"
    );
    let good = completed(vec![
        (1, e1.e_tag().expect("etag").to_owned()),
        (2, e2.e_tag().expect("etag").to_owned()),
    ]);
    let done = s3
        .complete_multipart_upload()
        .bucket("parts")
        .key("big")
        .upload_id(&id)
        .multipart_upload(good)
        .send()
        .await
        .expect("complete");
    let mut md5s = hex::decode(md5_hex(&part1)).expect("hex");
    md5s.extend(hex::decode(md5_hex(&part2)).expect("hex"));
    assert_eq!(unquote(done.e_tag()), format!("{}-2", md5_hex(&md5s)));

    let whole = s3
        .get_object()
        .bucket("parts")
        .key("big")
        .send()
        .await
        .expect("get");
    assert_eq!(whole.content_type(), Some("video/mp4"));
    let bytes = whole.body.collect().await.expect("body").into_bytes();
    assert_eq!(bytes.len(), part1.len() + part2.len());
    assert_eq!(&bytes[..part1.len()], part1.as_slice());
    assert_eq!(&bytes[part1.len()..], part2.as_slice());
    let second = s3
        .get_object()
        .bucket("parts")
        .key("big")
        .part_number(2)
        .send()
        .await
        .expect("part 2");
    assert_eq!(second.parts_count(), Some(2));
    assert_eq!(
        second
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .as_ref(),
        part2.as_slice()
    );
    // A range across the parts' boundary.
    let boundary = s3
        .get_object()
        .bucket("parts")
        .key("big")
        .range(format!("bytes={}-{}", part1.len() - 3, part1.len() + 2))
        .send()
        .await
        .expect("range");
    let mut expected = part1[part1.len() - 3..].to_vec();
    expected.extend(&part2[..3]);
    assert_eq!(
        boundary
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .as_ref(),
        expected.as_slice()
    );
    assert_eq!(
        s3_code(
            s3.list_parts()
                .bucket("parts")
                .key("big")
                .upload_id(&id)
                .send()
                .await
        ),
        "NoSuchUpload"
    );

    // Parts under 5 MiB (but the last) are refused; aborting frees everything.
    let small = s3
        .create_multipart_upload()
        .bucket("parts")
        .key("small")
        .send()
        .await
        .expect("create");
    let sid = small.upload_id().expect("id").to_owned();
    let s1 = s3
        .upload_part()
        .bucket("parts")
        .key("small")
        .upload_id(&sid)
        .part_number(1)
        .body(ByteStream::from_static(b"tiny"))
        .send()
        .await
        .expect("p1");
    let s2 = s3
        .upload_part()
        .bucket("parts")
        .key("small")
        .upload_id(&sid)
        .part_number(2)
        .body(ByteStream::from_static(b"tiny"))
        .send()
        .await
        .expect("p2");
    let too_small = completed(vec![
        (1, s1.e_tag().expect("e").to_owned()),
        (2, s2.e_tag().expect("e").to_owned()),
    ]);
    assert_eq!(
        s3_code(
            s3.complete_multipart_upload()
                .bucket("parts")
                .key("small")
                .upload_id(&sid)
                .multipart_upload(too_small)
                .send()
                .await
        ),
        "EntityTooSmall"
    );
    // UploadPartCopy from the completed object.
    let copied = s3
        .upload_part_copy()
        .bucket("parts")
        .key("small")
        .upload_id(&sid)
        .part_number(3)
        .copy_source("parts/big")
        .copy_source_range("bytes=0-99")
        .send()
        .await
        .expect("part copy");
    assert_eq!(
        unquote(copied.copy_part_result().and_then(|r| r.e_tag())),
        md5_hex(&part1[..100])
    );
    s3.abort_multipart_upload()
        .bucket("parts")
        .key("small")
        .upload_id(&sid)
        .send()
        .await
        .expect("abort");
    assert!(
        s3.list_multipart_uploads()
            .bucket("parts")
            .send()
            .await
            .expect("uploads")
            .uploads()
            .is_empty()
    );
    let usage = app
        .root(Method::GET, &format!("/orgs/{}/storage", t.org), None)
        .await
        .1;
    assert_eq!(
        usage["bytes"],
        (part1.len() + part2.len()) as i64,
        "{usage}"
    );
    assert_eq!(usage["objects"], 1, "{usage}");
}

#[tokio::test]
async fn presigned_urls_and_browser_posts_work_and_expire() {
    let app = spawn_app().await;
    let t = app.tenant("Presign").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "shared").await;
    let config =
        aws_sdk_s3::presigning::PresigningConfig::expires_in(std::time::Duration::from_secs(300))
            .expect("config");
    let put = s3
        .put_object()
        .bucket("shared")
        .key("upload.txt")
        .presigned(config.clone())
        .await
        .expect("presign put");
    let http = reqwest::Client::new();
    let response = http
        .put(put.uri())
        .body("from a presigned URL")
        .send()
        .await
        .expect("put");
    assert_eq!(
        response.status(),
        200,
        "{}",
        response.text().await.unwrap_or_default()
    );
    let get = s3
        .get_object()
        .bucket("shared")
        .key("upload.txt")
        .presigned(config)
        .await
        .expect("presign get");
    let response = http.get(get.uri()).send().await.expect("get");
    assert_eq!(response.text().await.expect("text"), "from a presigned URL");
    // A tampered URL is refused.
    let tampered = get.uri().replace("upload.txt", "other.txt");
    let response = http.get(&tampered).send().await.expect("get");
    assert_eq!(response.status(), 403);
    assert!(
        response
            .text()
            .await
            .unwrap_or_default()
            .contains("SignatureDoesNotMatch")
    );
    // An expired one too.
    let short = aws_sdk_s3::presigning::PresigningConfig::builder()
        .expires_in(std::time::Duration::from_secs(1))
        .build()
        .expect("config");
    let soon = s3
        .get_object()
        .bucket("shared")
        .key("upload.txt")
        .presigned(short)
        .await
        .expect("presign");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let response = http.get(soon.uri()).send().await.expect("get");
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn quotas_lifecycle_and_the_access_log() {
    // Lifecycle days of a second, on a clock the test moves on.
    let start = crate::helpers::wall_clock_ms();
    let app = crate::helpers::spawn(crate::helpers::Spawn {
        env: vec![("NUAGE_STORAGE__LIFECYCLE_DAY_SECONDS".into(), "1".into())],
        clock: Some(start),
        ..Default::default()
    })
    .await;
    let t = app.tenant("Quota").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "quota").await;
    let (status, body) = app
        .root(
            Method::PUT,
            &format!("/orgs/{}/quota", t.org),
            Some(serde_json::json!({"max_bytes": 1000, "max_objects": 3})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    put(&s3, "quota", "a", ByteStream::from(vec![1u8; 600])).await;
    let over = s3
        .put_object()
        .bucket("quota")
        .key("b")
        .body(ByteStream::from(vec![1u8; 600]))
        .send()
        .await;
    assert_eq!(
        over.as_ref()
            .err()
            .and_then(|e| e.raw_response())
            .map(|r| r.status().as_u16()),
        Some(403)
    );
    assert_eq!(s3_code(over), "QuotaExceeded");
    assert_eq!(
        s3_code(s3.head_object().bucket("quota").key("b").send().await),
        "NotFound"
    );
    // Overwriting within the quota is fine: the old version's bytes go.
    put(&s3, "quota", "a", ByteStream::from(vec![2u8; 900])).await;
    let usage = app
        .root(Method::GET, &format!("/orgs/{}/storage", t.org), None)
        .await
        .1;
    assert_eq!(usage["bytes"], 900);
    assert_eq!(usage["objects"], 1);
    // Only operators set quotas.
    let user_token = {
        let (_, _) = app
            .create_user(&t.org, "owner@quota.example", "owner")
            .await;
        app.token_for("owner@quota.example", None).await
    };
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("/orgs/{}/quota", t.org),
            &user_token,
            Some(serde_json::json!({"max_bytes": 1})),
        )
        .await;
    assert_eq!(status, 403);

    // Lifecycle: with a day of one second, an expiration of one day removes
    // objects under the prefix at the next upkeep, and only those.
    let (status, body) = app
        .root(
            Method::PUT,
            &format!("/orgs/{}/quota", t.org),
            Some(serde_json::json!({})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    put(&s3, "quota", "logs/old", ByteStream::from_static(b"old")).await;
    put(&s3, "quota", "keep/this", ByteStream::from_static(b"keep")).await;
    let rule = aws_sdk_s3::types::LifecycleRule::builder()
        .id("expire-logs")
        .status(aws_sdk_s3::types::ExpirationStatus::Enabled)
        .filter(
            aws_sdk_s3::types::LifecycleRuleFilter::builder()
                .prefix("logs/")
                .build(),
        )
        .expiration(
            aws_sdk_s3::types::LifecycleExpiration::builder()
                .days(1)
                .build(),
        )
        .build()
        .expect("rule");
    s3.put_bucket_lifecycle_configuration()
        .bucket("quota")
        .lifecycle_configuration(
            aws_sdk_s3::types::BucketLifecycleConfiguration::builder()
                .rules(rule)
                .build()
                .expect("config"),
        )
        .send()
        .await
        .expect("lifecycle");
    let read_back = s3
        .get_bucket_lifecycle_configuration()
        .bucket("quota")
        .send()
        .await
        .expect("get lifecycle");
    assert_eq!(read_back.rules()[0].id(), Some("expire-logs"));
    app.set_clock(start + 1500).await;
    let report = app.maintain().await;
    assert_eq!(report["versions_expired"], 1, "{report}");
    assert_eq!(
        s3_code(
            s3.head_object()
                .bucket("quota")
                .key("logs/old")
                .send()
                .await
        ),
        "NotFound"
    );
    s3.head_object()
        .bucket("quota")
        .key("keep/this")
        .send()
        .await
        .expect("kept");

    // The access log names the key, the operation and the outcome (upkeep
    // writes what is queued first).
    app.maintain().await;
    let (status, log) = app
        .root(
            Method::GET,
            &format!("/orgs/{}/access-log?limit=500", t.org),
            None,
        )
        .await;
    assert_eq!(status, 200, "{log}");
    let entries = log.as_array().expect("entries");
    let refused = entries
        .iter()
        .find(|e| e["operation"] == "PutObject" && e["key"] == "b")
        .expect("the refused upload is logged");
    assert_eq!(refused["status"], 403);
    assert_eq!(refused["access_key_id"], t.access_key_id.as_str());
    assert!(
        entries.iter().any(|e| e["operation"] == "HeadObject"
            && e["key"] == "keep/this"
            && e["status"] == 200)
    );
}

#[tokio::test]
async fn the_admin_command_sets_and_shows_quotas() {
    let app = spawn_app().await;
    let t = app.tenant("Quota CLI").await;
    let set = app.cli(
        &[
            "admin",
            "quota",
            "set",
            "--org",
            &t.org,
            "--bytes",
            "5000",
            "--objects",
            "7",
            "--json",
        ],
        None,
    );
    assert_eq!(set.code, 0, "{}", set.stderr);
    assert_eq!(set.json()["max_bytes"], 5000);
    assert_eq!(set.json()["max_objects"], 7);
    let shown = app.cli(&["admin", "quota", "show", "--org", &t.org], None);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(
        shown.stdout.contains("bytes: 0 of 5000"),
        "{}",
        shown.stdout
    );
    let unknown = app.cli(
        &[
            "admin",
            "quota",
            "set",
            "--org",
            "01900000-0000-7000-8000-000000000000",
            "--bytes",
            "1",
        ],
        None,
    );
    assert_eq!(unknown.code, 1, "{}", unknown.stderr);
}

/// Sends raw bytes on a new connection and returns what came back (until
/// the server closes or answers).
async fn raw_exchange(
    endpoint: &str,
    request: &[u8],
    pause_after: Option<std::time::Duration>,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = endpoint.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stream.write_all(request).await.expect("write");
    if let Some(pause) = pause_after {
        tokio::time::sleep(pause).await;
    } else {
        stream.shutdown().await.expect("half-close");
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        stream.read_to_end(&mut answer),
    )
    .await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn bad_input_gets_s3_errors_and_changes_nothing() {
    let app = crate::helpers::spawn(crate::helpers::Spawn {
        env: vec![
            (
                "NUAGE_STORAGE__BODY_IDLE_TIMEOUT_SECONDS".into(),
                "1".into(),
            ),
            ("NUAGE_STORAGE__MAX_CONCURRENT_REQUESTS".into(), "2".into()),
        ],
        ..Default::default()
    })
    .await;
    let t = app.tenant("Bad input").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "guarded").await;

    // Credentials: unknown key, wrong secret, no signature, a clock an hour off.
    let stranger =
        crate::helpers::s3_client(&app.s3, "NKUNKNOWNUNKNOWN0000", "x".repeat(40).as_str());
    assert_eq!(
        s3_code(stranger.list_buckets().send().await),
        "InvalidAccessKeyId"
    );
    let forger = crate::helpers::s3_client(&app.s3, &t.access_key_id, "y".repeat(40).as_str());
    assert_eq!(
        s3_code(
            forger
                .put_object()
                .bucket("guarded")
                .key("forged")
                .body(ByteStream::from_static(b"x"))
                .send()
                .await
        ),
        "SignatureDoesNotMatch"
    );
    let anonymous = reqwest::Client::new()
        .put(format!("{}/guarded/anon", app.s3))
        .body("x")
        .send()
        .await
        .expect("put");
    assert_eq!(anonymous.status(), 403);
    assert!(
        anonymous
            .text()
            .await
            .unwrap_or_default()
            .contains("<Code>AccessDenied</Code>")
    );
    let skewed = {
        let past = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        // Without retries: the SDK would otherwise learn the server's clock and try again.
        let config = s3
            .config()
            .to_builder()
            .time_source(aws_smithy_async::time::StaticTimeSource::new(past))
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_s3::Client::from_conf(config)
    };
    assert_eq!(
        s3_code(skewed.list_objects_v2().bucket("guarded").send().await),
        "RequestTimeTooSkewed"
    );

    let host = app.s3.trim_start_matches("http://").to_owned();
    let presign = |key: &str| {
        let s3 = s3.clone();
        let key = key.to_owned();
        async move {
            let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(
                std::time::Duration::from_secs(300),
            )
            .expect("config");
            let url = s3
                .put_object()
                .bucket("guarded")
                .key(&key)
                .presigned(config)
                .await
                .expect("presign")
                .uri()
                .to_owned();
            url.split_once("://")
                .map(|(_, rest)| rest.split_once('/').map_or("/", |(_, p)| p).to_owned())
                .expect("path")
        }
    };

    // A body shorter than its Content-Length: nothing stored.
    let path = presign("short").await;
    let request =
        format!("PUT /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 100\r\n\r\n0123456789");
    let _ = raw_exchange(&app.s3, request.as_bytes(), None).await;

    // A client that stops sending: an S3 timeout error, nothing stored.
    let path = presign("slow").await;
    let request =
        format!("PUT /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 100\r\n\r\n0123456789");
    let answer = raw_exchange(
        &app.s3,
        request.as_bytes(),
        Some(std::time::Duration::from_secs(3)),
    )
    .await;
    assert!(
        answer.contains("400") && answer.contains("RequestTimeout"),
        "{answer}"
    );

    // More requests at once than allowed: 503 SlowDown with Retry-After.
    let hold = |key: &'static str| {
        let endpoint = app.s3.clone();
        let host = host.clone();
        let presign = presign(key);
        async move {
            let path = presign.await;
            let request =
                format!("PUT /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 100\r\n\r\n0");
            raw_exchange(
                &endpoint,
                request.as_bytes(),
                Some(std::time::Duration::from_millis(2500)),
            )
            .await
        }
    };
    let (first, second) = (tokio::spawn(hold("held-1")), tokio::spawn(hold("held-2")));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let refused = reqwest::get(format!("{}/guarded", app.s3))
        .await
        .expect("get");
    assert_eq!(refused.status(), 503);
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert!(
        refused
            .text()
            .await
            .unwrap_or_default()
            .contains("<Code>SlowDown</Code>")
    );
    let _ = (first.await, second.await);

    // Nothing of all that was stored, and the server still serves.
    let listed = s3
        .list_objects_v2()
        .bucket("guarded")
        .send()
        .await
        .expect("list");
    assert!(listed.contents().is_empty(), "{:?}", listed.contents());
    let usage = app
        .root(Method::GET, &format!("/orgs/{}/storage", t.org), None)
        .await
        .1;
    assert_eq!(usage["bytes"], 0, "{usage}");
    let incoming = app.data_dir.join("blobs/fr-par/incoming");
    assert_eq!(
        std::fs::read_dir(&incoming).expect("incoming").count(),
        0,
        "abandoned uploads leave no file"
    );
    assert!(!app.log().contains("panicked"), "{}", app.log());
}

#[tokio::test]
async fn two_nodes_share_a_remote_blob_store_and_one_database() {
    // The store: another Nuage, reached over S3.
    let store = spawn_app().await;
    let keeper = store.tenant("Blob keeper").await;
    let store_s3 = store.s3_client(&keeper);
    create_bucket(&store_s3, "nuage-blobs").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("remote.toml");
    std::fs::write(
        &config,
        format!(
            "[[storage.regions]]\nname = \"eu-remote\"\njurisdiction = \"EU\"\nlocation = \"Another Nuage\"\n\
             [storage.regions.s3]\nendpoint = \"{}\"\nbucket = \"nuage-blobs\"\naccess_key_id = \"{}\"\n\
             secret_access_key = \"{}\"\nroot = \"/node\"\n",
            store.s3, keeper.access_key_id, keeper.secret
        ),
    )
    .expect("config");
    let args = vec!["--config".to_owned(), config.display().to_string()];
    let one = crate::helpers::spawn(crate::helpers::Spawn {
        args: args.clone(),
        ..Default::default()
    })
    .await;
    let two = crate::helpers::spawn(crate::helpers::Spawn {
        database_url: Some(one.database_url.clone()),
        master_key_file: Some(one.data_dir.join("master.key")),
        root_token: Some(one.root_token.clone()),
        args,
        ..Default::default()
    })
    .await;
    assert!(
        !one.log().contains(&keeper.secret),
        "the store's secret is not logged"
    );

    let t = one.tenant("Shared").await;
    let (s1, s2) = (one.s3_client(&t), two.s3_client(&t));
    create_bucket(&s1, "shared-remote").await;
    let location = s2
        .get_bucket_location()
        .bucket("shared-remote")
        .send()
        .await
        .expect("location");
    assert_eq!(
        location.location_constraint().map(|l| l.as_str()),
        Some("eu-remote")
    );

    // Written through one node, read through the other at once.
    let marker = format!("remote-marker-{}", uuid::Uuid::new_v4().simple());
    let content = marker.repeat(5000).into_bytes();
    if let Err(e) = s1
        .put_object()
        .bucket("shared-remote")
        .key("from-one")
        .body(ByteStream::from(content.clone()))
        .send()
        .await
    {
        panic!(
            "put through the remote store: {e:?}\n{}\n{}",
            one.log(),
            store.log()
        );
    }
    let read = s2
        .get_object()
        .bucket("shared-remote")
        .key("from-one")
        .range("bytes=70000-70099")
        .send()
        .await
        .expect("get");
    assert_eq!(
        read.body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .as_ref(),
        &content[70_000..70_100]
    );
    put(
        &s2,
        "shared-remote",
        "from-two",
        ByteStream::from_static(b"two"),
    )
    .await;
    for s3 in [&s1, &s2] {
        let keys: Vec<String> = s3
            .list_objects_v2()
            .bucket("shared-remote")
            .send()
            .await
            .expect("list")
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect();
        assert_eq!(keys, ["from-one", "from-two"]);
    }

    // The store holds sealed blobs only, under the configured folder.
    let held = store_s3
        .list_objects_v2()
        .bucket("nuage-blobs")
        .prefix("node/blobs/")
        .send()
        .await
        .expect("list store");
    assert_eq!(held.contents().len(), 2, "{:?}", held.contents());
    for blob in held.contents() {
        let bytes = get_bytes(&store_s3, "nuage-blobs", blob.key().expect("key")).await;
        assert!(
            !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
            "the store sees no plaintext"
        );
    }

    // A quota holds across both nodes taking uploads at once.
    let (status, _) = one
        .root(
            Method::PUT,
            &format!("/orgs/{}/quota", t.org),
            Some(serde_json::json!({"max_bytes": content.len() + 3 + 1000})),
        )
        .await;
    assert_eq!(status, 200);
    let mut uploads = Vec::new();
    for i in 0..8 {
        let s3 = if i % 2 == 0 { s1.clone() } else { s2.clone() };
        uploads.push(tokio::spawn(async move {
            s3.put_object()
                .bucket("shared-remote")
                .key(format!("q{i}"))
                .body(ByteStream::from(vec![7u8; 300]))
                .send()
                .await
                .is_ok()
        }));
    }
    let mut stored = 0;
    for u in uploads {
        stored += i32::from(u.await.expect("task"));
    }
    assert_eq!(stored, 3, "exactly the uploads that fit were accepted");
    let usage = two
        .root(Method::GET, &format!("/orgs/{}/storage", t.org), None)
        .await
        .1;
    assert_eq!(usage["bytes"], content.len() as i64 + 3 + 900, "{usage}");

    // Deleting releases the remote blob.
    s2.delete_object()
        .bucket("shared-remote")
        .key("from-one")
        .send()
        .await
        .expect("delete");
    one.maintain().await;
    let held = store_s3
        .list_objects_v2()
        .bucket("nuage-blobs")
        .prefix("node/blobs/")
        .send()
        .await
        .expect("list store");
    assert_eq!(held.contents().len(), 1 + 3, "{:?}", held.contents());
}

#[tokio::test]
async fn buckets_are_reachable_by_virtual_host_with_a_root_domain() {
    let app = crate::helpers::spawn(crate::helpers::Spawn {
        env: vec![("NUAGE_STORAGE__ROOT_DOMAIN".into(), "s3.nuage.test".into())],
        ..Default::default()
    })
    .await;
    let t = app.tenant("Virtual hosts").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "vhost").await;
    put(
        &s3,
        "vhost",
        "dir/page.html",
        ByteStream::from_static(b"<p>hi</p>"),
    )
    .await;
    // bucket.s3.nuage.test resolves to the listener.
    let address: std::net::SocketAddr = app
        .s3
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let http = reqwest::Client::builder()
        .resolve("vhost.s3.nuage.test", address)
        .build()
        .expect("client");
    let url = format!(
        "http://vhost.s3.nuage.test:{}/dir/page.html",
        address.port()
    );
    let signature = crate::helpers::sign_request(&t, "GET", &url, &[], b"").expect("sign");
    let mut request = http.get(&url);
    for (k, v) in &signature {
        request = request.header(k, v);
    }
    let response = request.send().await.expect("get");
    let status = response.status();
    let body = response.text().await.expect("body");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "<p>hi</p>");
    // Path style by address still works beside it.
    let listed = s3
        .list_objects_v2()
        .bucket("vhost")
        .send()
        .await
        .expect("path style");
    assert_eq!(listed.contents().len(), 1);
}

/// A browser form upload: the policy and its SigV4 signature, as a web page
/// would embed them.
fn post_form(
    t: &crate::helpers::Tenant,
    bucket: &str,
    key: &str,
    key_condition: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> (String, Vec<u8>) {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    type HmacSha256 = Hmac<sha2::Sha256>;
    let mac = |key: &[u8], data: &[u8]| {
        let mut m = HmacSha256::new_from_slice(key).expect("hmac key");
        m.update(data);
        m.finalize().into_bytes().to_vec()
    };
    let now = time::OffsetDateTime::now_utc();
    let date = format!("{:04}{:02}{:02}", now.year(), now.month() as u8, now.day());
    let amz_date = format!(
        "{date}T{:02}{:02}{:02}Z",
        now.hour(),
        now.minute(),
        now.second()
    );
    let credential = format!("{}/{date}/us-east-1/s3/aws4_request", t.access_key_id);
    let expiration = (now + time::Duration::minutes(10))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("date");
    let mut conditions = serde_json::json!([
        {"bucket": bucket},
        ["starts-with", "$key", key_condition],
        {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
        {"x-amz-credential": credential},
        {"x-amz-date": amz_date},
    ]);
    for (name, value) in extra {
        conditions
            .as_array_mut()
            .expect("conditions")
            .push(serde_json::json!({ *name: value }));
    }
    let policy = serde_json::json!({ "expiration": expiration, "conditions": conditions });
    let policy = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
    let signing_key = [date.as_bytes(), b"us-east-1", b"s3", b"aws4_request"]
        .iter()
        .fold(format!("AWS4{}", t.secret).into_bytes(), |k, part| {
            mac(&k, part)
        });
    let signature = hex::encode(mac(&signing_key, policy.as_bytes()));
    let boundary = "nuage-form-boundary";
    let mut form = Vec::new();
    for (name, value) in [
        ("key", key),
        ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
        ("x-amz-credential", &credential),
        ("x-amz-date", &amz_date),
        ("policy", &policy),
        ("x-amz-signature", &signature),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    {
        form.extend(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    form.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.txt\"\r\nContent-Type: text/plain\r\n\r\n").as_bytes());
    form.extend(body);
    form.extend(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), form)
}

#[tokio::test]
async fn browser_forms_upload_with_a_signed_policy() {
    let app = spawn_app().await;
    let t = app.tenant("Forms").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "forms").await;
    let http = reqwest::Client::new();
    let (content_type, form) = post_form(&t, "forms", "uploads/cv.txt", "uploads/", b"my CV", &[]);
    let response = http
        .post(format!("{}/forms", app.s3))
        .header("content-type", &content_type)
        .body(form)
        .send()
        .await
        .expect("post");
    assert!(
        response.status().is_success(),
        "{}",
        response.text().await.unwrap_or_default()
    );
    let got = s3
        .get_object()
        .bucket("forms")
        .key("uploads/cv.txt")
        .send()
        .await
        .expect("get");
    assert_eq!(
        got.body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .as_ref(),
        b"my CV"
    );

    // A key outside what the policy allows, or a policy signed with another
    // secret: refused, nothing stored.
    let (content_type, form) = post_form(&t, "forms", "elsewhere.txt", "uploads/", b"no", &[]);
    let response = http
        .post(format!("{}/forms", app.s3))
        .header("content-type", &content_type)
        .body(form)
        .send()
        .await
        .expect("post");
    assert_eq!(
        response.status(),
        403,
        "a policy condition failed: 403, as on AWS"
    );
    let body = response.text().await.unwrap_or_default();
    assert!(
        body.contains("<Code>AccessDenied</Code>") && body.contains("Invalid according to Policy"),
        "{body}"
    );
    let forger = crate::helpers::Tenant {
        secret: "z".repeat(40),
        ..t.clone()
    };
    let (content_type, form) = post_form(
        &forger,
        "forms",
        "uploads/forged.txt",
        "uploads/",
        b"no",
        &[],
    );
    let response = http
        .post(format!("{}/forms", app.s3))
        .header("content-type", &content_type)
        .body(form)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 403);
    let listed = s3
        .list_objects_v2()
        .bucket("forms")
        .send()
        .await
        .expect("list");
    assert_eq!(listed.contents().len(), 1);

    // ${filename} in the key is the name of the file sent (f.txt here).
    let (content_type, form) = post_form(
        &t,
        "forms",
        "uploads/${filename}",
        "uploads/",
        b"named",
        &[],
    );
    let response = http
        .post(format!("{}/forms", app.s3))
        .header("content-type", &content_type)
        .body(form)
        .send()
        .await
        .expect("post");
    assert!(
        response.status().is_success(),
        "{:?}",
        response.text().await
    );
    assert_eq!(
        get_bytes(&s3, "forms", "uploads/f.txt").await,
        &b"named"[..]
    );
    // success_action_status 201 answers the created object's XML...
    let (content_type, form) = post_form(
        &t,
        "forms",
        "uploads/201.txt",
        "uploads/",
        b"x",
        &[("success_action_status", "201")],
    );
    let response = http
        .post(format!("{}/forms", app.s3))
        .header("content-type", &content_type)
        .body(form)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 201);
    let body = response.text().await.expect("body");
    assert!(
        body.contains("<Key>uploads/201.txt</Key>") && body.contains("<Bucket>forms</Bucket>"),
        "{body}"
    );
    // ...and success_action_redirect sends the browser on, with the object.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let (content_type, form) = post_form(
        &t,
        "forms",
        "uploads/redirected.txt",
        "uploads/",
        b"x",
        &[("success_action_redirect", "https://shop.example.org/thanks")],
    );
    let response = no_redirects
        .post(format!("{}/forms", app.s3))
        .header("content-type", &content_type)
        .body(form)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 303);
    let location = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        location.starts_with(
            "https://shop.example.org/thanks?bucket=forms&key=uploads%2Fredirected.txt&etag="
        ),
        "{location}"
    );
}

/// An enabled lifecycle rule over the keys under `prefix`.
fn prefix_rule(prefix: &str) -> aws_sdk_s3::types::builders::LifecycleRuleBuilder {
    aws_sdk_s3::types::LifecycleRule::builder()
        .status(aws_sdk_s3::types::ExpirationStatus::Enabled)
        .filter(
            aws_sdk_s3::types::LifecycleRuleFilter::builder()
                .prefix(prefix)
                .build(),
        )
}

/// Sets a bucket's lifecycle configuration.
async fn put_lifecycle(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    rules: aws_sdk_s3::types::BucketLifecycleConfiguration,
) -> Result<
    aws_sdk_s3::operation::put_bucket_lifecycle_configuration::PutBucketLifecycleConfigurationOutput,
    aws_sdk_s3::error::SdkError<
        aws_sdk_s3::operation::put_bucket_lifecycle_configuration::PutBucketLifecycleConfigurationError,
        aws_sdk_s3::config::http::HttpResponse,
    >,
>{
    s3.put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(rules)
        .send()
        .await
}

#[tokio::test]
async fn lifecycle_rules_expire_noncurrent_versions_tagged_objects_and_stale_uploads() {
    // Lifecycle days of a second, on a clock the test moves on.
    let start = crate::helpers::wall_clock_ms();
    let app = crate::helpers::spawn(crate::helpers::Spawn {
        env: vec![("NUAGE_STORAGE__LIFECYCLE_DAY_SECONDS".into(), "1".into())],
        clock: Some(start),
        ..Default::default()
    })
    .await;
    let t = app.tenant("Lifecycle").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "cycle").await;
    s3.put_bucket_versioning()
        .bucket("cycle")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("versioning");
    use aws_sdk_s3::types::{
        AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, ExpirationStatus,
        LifecycleExpiration, LifecycleRule, LifecycleRuleAndOperator, LifecycleRuleFilter,
        NoncurrentVersionExpiration,
    };
    let rules = BucketLifecycleConfiguration::builder()
        .rules(
            prefix_rule("docs/")
                .id("old-versions")
                .noncurrent_version_expiration(
                    NoncurrentVersionExpiration::builder()
                        .noncurrent_days(1)
                        .build(),
                )
                .build()
                .expect("rule"),
        )
        .rules(
            LifecycleRule::builder()
                .id("temporary")
                .status(ExpirationStatus::Enabled)
                .filter(
                    LifecycleRuleFilter::builder()
                        .and(
                            LifecycleRuleAndOperator::builder()
                                .prefix("tmp/")
                                .tags(
                                    Tag::builder()
                                        .key("kind")
                                        .value("scratch")
                                        .build()
                                        .expect("tag"),
                                )
                                .build(),
                        )
                        .build(),
                )
                .expiration(LifecycleExpiration::builder().days(1).build())
                .build()
                .expect("rule"),
        )
        .rules(
            LifecycleRule::builder()
                .id("large-logs")
                .status(ExpirationStatus::Enabled)
                .filter(
                    LifecycleRuleFilter::builder()
                        .and(
                            LifecycleRuleAndOperator::builder()
                                .prefix("logs/")
                                .object_size_greater_than(10)
                                .build(),
                        )
                        .build(),
                )
                .expiration(LifecycleExpiration::builder().days(1).build())
                .build()
                .expect("rule"),
        )
        .rules(
            prefix_rule("")
                .id("stale-uploads")
                .abort_incomplete_multipart_upload(
                    AbortIncompleteMultipartUpload::builder()
                        .days_after_initiation(1)
                        .build(),
                )
                .build()
                .expect("rule"),
        )
        .build()
        .expect("rules");
    put_lifecycle(&s3, "cycle", rules).await.expect("lifecycle");

    put(&s3, "cycle", "docs/a", ByteStream::from_static(b"v1")).await;
    put(&s3, "cycle", "docs/a", ByteStream::from_static(b"v2")).await;
    s3.put_object()
        .bucket("cycle")
        .key("tmp/scratch")
        .tagging("kind=scratch")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect("put");
    s3.put_object()
        .bucket("cycle")
        .key("tmp/keep")
        .tagging("kind=keep")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect("put");
    for (key, size) in [("logs/small", 5), ("logs/large", 20)] {
        put(&s3, "cycle", key, ByteStream::from(vec![b'l'; size])).await;
    }
    let stored = s3
        .get_bucket_lifecycle_configuration()
        .bucket("cycle")
        .send()
        .await
        .expect("get lifecycle");
    let large = stored
        .rules()
        .iter()
        .find(|r| r.id() == Some("large-logs"))
        .expect("the sized rule");
    assert_eq!(
        large
            .filter()
            .and_then(|f| f.and())
            .and_then(|a| a.object_size_greater_than()),
        Some(10)
    );
    let upload = s3
        .create_multipart_upload()
        .bucket("cycle")
        .key("big")
        .send()
        .await
        .expect("upload");

    // Nothing is old enough yet.
    let report = app.maintain().await;
    assert_eq!(report["versions_expired"], 0, "{report}");
    app.set_clock(start + 1500).await;
    let report = app.maintain().await;
    assert_eq!(
        report["versions_expired"], 3,
        "the old version, the scratch object and the large log: {report}"
    );
    s3.get_object()
        .bucket("cycle")
        .key("logs/small")
        .send()
        .await
        .expect("a log under the size filter stays");
    assert_eq!(
        s3_code(
            s3.get_object()
                .bucket("cycle")
                .key("logs/large")
                .send()
                .await
        ),
        "NoSuchKey"
    );
    assert_eq!(report["uploads_aborted"], 1, "{report}");

    let versions = s3
        .list_object_versions()
        .bucket("cycle")
        .prefix("docs/")
        .send()
        .await
        .expect("versions");
    assert_eq!(
        versions.versions().len(),
        1,
        "only the current version is left"
    );
    let current = s3
        .get_object()
        .bucket("cycle")
        .key("docs/a")
        .send()
        .await
        .expect("current");
    assert_eq!(
        current
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .as_ref(),
        b"v2"
    );
    // In a versioned bucket, expiring the current version leaves a delete marker.
    assert_eq!(
        s3_code(
            s3.get_object()
                .bucket("cycle")
                .key("tmp/scratch")
                .send()
                .await
        ),
        "NoSuchKey"
    );
    let scratch = s3
        .list_object_versions()
        .bucket("cycle")
        .prefix("tmp/scratch")
        .send()
        .await
        .expect("versions");
    assert_eq!(scratch.delete_markers().len(), 1);
    s3.head_object()
        .bucket("cycle")
        .key("tmp/keep")
        .send()
        .await
        .expect("other tags are kept");
    assert_eq!(
        s3_code(
            s3.list_parts()
                .bucket("cycle")
                .key("big")
                .upload_id(upload.upload_id().expect("id"))
                .send()
                .await
        ),
        "NoSuchUpload"
    );
    // Expired delete markers go once nothing is left behind them; the
    // newest non-current versions are kept.
    let rules = BucketLifecycleConfiguration::builder()
        .rules(
            prefix_rule("tmp/")
                .id("markers")
                .expiration(
                    LifecycleExpiration::builder()
                        .expired_object_delete_marker(true)
                        .build(),
                )
                .build()
                .expect("rule"),
        )
        .rules(
            prefix_rule("hist/")
                .id("keep-two")
                .noncurrent_version_expiration(
                    NoncurrentVersionExpiration::builder()
                        .noncurrent_days(1)
                        .newer_noncurrent_versions(2)
                        .build(),
                )
                .build()
                .expect("rule"),
        )
        .build()
        .expect("rules");
    put_lifecycle(&s3, "cycle", rules).await.expect("lifecycle");
    let stored = s3
        .get_bucket_lifecycle_configuration()
        .bucket("cycle")
        .send()
        .await
        .expect("get lifecycle");
    let find = |id: &str| {
        stored
            .rules()
            .iter()
            .find(|r| r.id() == Some(id))
            .cloned()
            .expect("rule")
    };
    assert_eq!(
        find("markers")
            .expiration()
            .and_then(|e| e.expired_object_delete_marker()),
        Some(true)
    );
    assert_eq!(
        find("keep-two")
            .noncurrent_version_expiration()
            .and_then(|n| n.newer_noncurrent_versions()),
        Some(2)
    );
    for n in 1..=5 {
        put(
            &s3,
            "cycle",
            "hist/x",
            ByteStream::from(format!("v{n}").into_bytes()),
        )
        .await;
    }
    let solo = put(&s3, "cycle", "tmp/solo", ByteStream::from_static(b"x")).await;
    s3.delete_object()
        .bucket("cycle")
        .key("tmp/solo")
        .send()
        .await
        .expect("marker");
    s3.delete_object()
        .bucket("cycle")
        .key("tmp/solo")
        .version_id(solo.version_id().expect("version"))
        .send()
        .await
        .expect("the data version goes; the marker stays alone");
    app.set_clock(start + 3000).await;
    let report = app.maintain().await;
    assert_eq!(
        report["versions_expired"], 3,
        "two old versions of hist/x and the lone marker: {report}"
    );
    let hist = s3
        .list_object_versions()
        .bucket("cycle")
        .prefix("hist/")
        .send()
        .await
        .expect("versions");
    let mut bodies = Vec::new();
    for v in hist.versions() {
        let got = s3
            .get_object()
            .bucket("cycle")
            .key("hist/x")
            .version_id(v.version_id().expect("id"))
            .send()
            .await
            .expect("version");
        bodies.push(
            String::from_utf8(got.body.collect().await.expect("body").to_vec()).expect("utf-8"),
        );
    }
    bodies.sort();
    assert_eq!(
        bodies,
        ["v3", "v4", "v5"],
        "the current and the two newest non-current"
    );
    let solo = s3
        .list_object_versions()
        .bucket("cycle")
        .prefix("tmp/solo")
        .send()
        .await
        .expect("versions");
    assert!(
        solo.delete_markers().is_empty() && solo.versions().is_empty(),
        "the lone marker is gone"
    );
    let scratch = s3
        .list_object_versions()
        .bucket("cycle")
        .prefix("tmp/scratch")
        .send()
        .await
        .expect("versions");
    assert_eq!(
        scratch.delete_markers().len(),
        1,
        "a marker with a version behind it stays"
    );
    // Rules that cannot be applied as written are refused, not ignored.
    let bad = BucketLifecycleConfiguration::builder()
        .rules(
            prefix_rule("")
                .expiration(
                    LifecycleExpiration::builder()
                        .days(3)
                        .expired_object_delete_marker(true)
                        .build(),
                )
                .build()
                .expect("rule"),
        )
        .build()
        .expect("rules");
    assert_eq!(
        s3_code(put_lifecycle(&s3, "cycle", bad).await),
        "InvalidArgument"
    );
    // One storage class: there is nothing to transition to.
    let transition = BucketLifecycleConfiguration::builder()
        .rules(
            prefix_rule("")
                .transitions(
                    aws_sdk_s3::types::Transition::builder()
                        .days(30)
                        .storage_class(aws_sdk_s3::types::TransitionStorageClass::Glacier)
                        .build(),
                )
                .build()
                .expect("rule"),
        )
        .build()
        .expect("rules");
    assert_eq!(
        s3_code(put_lifecycle(&s3, "cycle", transition).await),
        "InvalidStorageClass"
    );
}

#[tokio::test]
async fn metering_counts_requests_by_class_egress_and_storage_over_time() {
    use sqlx::Row;
    let app = spawn_app().await;
    let t = app.tenant("Metered").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "metered").await;
    put(&s3, "metered", "a", ByteStream::from(vec![0u8; 1000])).await;
    put(&s3, "metered", "a", ByteStream::from(vec![0u8; 400])).await;
    for _ in 0..3 {
        s3.get_object()
            .bucket("metered")
            .key("a")
            .send()
            .await
            .expect("get")
            .body
            .collect()
            .await
            .expect("body");
    }
    s3.head_object()
        .bucket("metered")
        .key("a")
        .send()
        .await
        .expect("head");
    s3.list_objects_v2()
        .bucket("metered")
        .send()
        .await
        .expect("list");
    s3.delete_object()
        .bucket("metered")
        .key("a")
        .send()
        .await
        .expect("delete");
    let _ = s3.get_object().bucket("metered").key("a").send().await;
    app.maintain().await;

    let mut db = app.database().await;
    let row = sqlx::query(
        "SELECT CAST(SUM(class_a) AS BIGINT) AS a, CAST(SUM(class_b) AS BIGINT) AS b, \
         CAST(SUM(egress_bytes) AS BIGINT) AS egress FROM usage_records WHERE org_id = $1 AND bucket = $2",
    )
    .bind(&t.org)
    .bind("metered")
    .fetch_one(&mut db)
    .await
    .expect("usage");
    // Class A: CreateBucket, two PUTs, one LIST; class B: three GETs and a
    // HEAD; the DELETE and the refused GET are free.
    assert_eq!(row.get::<i64, _>("a"), 4);
    assert_eq!(row.get::<i64, _>("b"), 4);
    assert_eq!(row.get::<i64, _>("egress"), 1200);
    // Storage over time: every change, with its time, adds up to nothing left.
    let deltas = sqlx::query(
        "SELECT delta_bytes, delta_objects FROM storage_deltas WHERE org_id = $1 ORDER BY at, id",
    )
    .bind(&t.org)
    .fetch_all(&mut db)
    .await
    .expect("deltas");
    let bytes: Vec<i64> = deltas
        .iter()
        .map(|r| r.get::<i64, _>("delta_bytes"))
        .collect();
    assert_eq!(bytes, [1000, -600, -400]);
    assert_eq!(
        deltas
            .iter()
            .map(|r| r.get::<i64, _>("delta_objects"))
            .sum::<i64>(),
        0
    );
}

#[tokio::test]
async fn incomplete_uploads_expire_after_the_configured_time() {
    let app = crate::helpers::spawn(crate::helpers::Spawn {
        env: vec![("NUAGE_STORAGE__UPLOAD_EXPIRY_HOURS".into(), "0".into())],
        ..Default::default()
    })
    .await;
    let t = app.tenant("Expiry").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "expiry").await;
    let upload = s3
        .create_multipart_upload()
        .bucket("expiry")
        .key("left")
        .send()
        .await
        .expect("upload");
    let id = upload.upload_id().expect("id");
    s3.upload_part()
        .bucket("expiry")
        .key("left")
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from(vec![1u8; 1000]))
        .send()
        .await
        .expect("part");
    let usage = app
        .root(Method::GET, &format!("/orgs/{}/storage", t.org), None)
        .await
        .1;
    assert_eq!(usage["bytes"], 1000, "parts count while they wait");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let report = app.maintain().await;
    assert_eq!(report["uploads_aborted"], 1, "{report}");
    assert_eq!(
        s3_code(
            s3.list_parts()
                .bucket("expiry")
                .key("left")
                .upload_id(id)
                .send()
                .await
        ),
        "NoSuchUpload"
    );
    let usage = app
        .root(Method::GET, &format!("/orgs/{}/storage", t.org), None)
        .await
        .1;
    assert_eq!(usage["bytes"], 0);
    assert_eq!(blob_files(&app), 0, "the part's blob is deleted");
}

#[tokio::test]
async fn of_writers_creating_one_key_at_once_with_if_none_match_exactly_one_succeeds() {
    let app = spawn_app().await;
    let t = app.tenant("Racers").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "race").await;
    let writers: Vec<_> = (0..16u8)
        .map(|i| {
            let s3 = s3.clone();
            tokio::spawn(async move {
                let outcome = s3
                    .put_object()
                    .bucket("race")
                    .key("lock")
                    .if_none_match("*")
                    .body(ByteStream::from(vec![i; 1000 + usize::from(i)]))
                    .send()
                    .await;
                (
                    i,
                    outcome.map_or_else(|e| s3_code::<_, ()>(Err(e)), |_| "ok".to_owned()),
                )
            })
        })
        .collect();
    let mut winners = Vec::new();
    for writer in writers {
        let (i, code) = writer.await.expect("writer");
        match code.as_str() {
            "ok" => winners.push(i),
            // Refused at the condition, or told to retry a concurrent write.
            "PreconditionFailed" | "ConditionalRequestConflict" => {}
            other => panic!("writer {i} got {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let stored = get_bytes(&s3, "race", "lock").await;
    let i = winners[0];
    assert_eq!(stored.as_ref(), vec![i; 1000 + usize::from(i)].as_slice());
    let versions = s3
        .list_object_versions()
        .bucket("race")
        .send()
        .await
        .expect("versions");
    assert_eq!(versions.versions().len(), 1);
}

#[tokio::test]
async fn every_answer_names_its_request_and_an_error_body_names_the_same() {
    let app = spawn_app().await;
    let t = app.tenant("Ids").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "ids").await;
    // An anonymous request, refused: the header and the body agree.
    let refused = app
        .http
        .get(format!("{}/ids/missing", app.s3))
        .send()
        .await
        .expect("sent");
    assert_eq!(refused.status(), 403);
    let id = refused
        .headers()
        .get("x-amz-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("x-amz-request-id")
        .to_owned();
    assert_eq!(id.len(), 16, "{id}");
    let body = refused.text().await.expect("body");
    assert!(
        body.contains(&format!("<RequestId>{id}</RequestId></Error>")),
        "{body}"
    );
    // A signed one the SDK parses: the id it reads is the header's.
    let missing = s3.get_object().bucket("ids").key("missing").send().await;
    let error = missing.expect_err("no such key");
    use aws_sdk_s3::operation::RequestId;
    let header = error
        .raw_response()
        .and_then(|r| r.headers().get("x-amz-request-id"))
        .expect("header")
        .to_owned();
    assert_eq!(error.request_id(), Some(header.as_str()));
    // Success has one too, and each request its own.
    let put = put(&s3, "ids", "k", ByteStream::from_static(b"x")).await;
    let ok = put.request_id().expect("a success's id").to_owned();
    assert_ne!(ok, id);
}

#[tokio::test]
async fn object_attributes_answer_what_is_asked() {
    use aws_sdk_s3::types::{ChecksumAlgorithm, ObjectAttributes};
    let app = spawn_app().await;
    let t = app.tenant("Attributes").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "attrs").await;
    let put = s3
        .put_object()
        .bucket("attrs")
        .key("doc")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .body(ByteStream::from_static(b"attributes"))
        .send()
        .await
        .expect("put");
    let all = s3
        .get_object_attributes()
        .bucket("attrs")
        .key("doc")
        .object_attributes(ObjectAttributes::Etag)
        .object_attributes(ObjectAttributes::Checksum)
        .object_attributes(ObjectAttributes::ObjectSize)
        .object_attributes(ObjectAttributes::StorageClass)
        .object_attributes(ObjectAttributes::ObjectParts)
        .send()
        .await
        .expect("attributes");
    // The same ETag (quoted, as s3s writes every ETag; AWS leaves this
    // answer's unquoted, and clients read both).
    assert_eq!(all.e_tag(), put.e_tag());
    assert_eq!(all.object_size(), Some(10));
    assert_eq!(all.storage_class().map(|c| c.as_str()), Some("STANDARD"));
    assert_eq!(
        all.checksum().and_then(|c| c.checksum_sha256()),
        put.checksum_sha256()
    );
    assert!(all.object_parts().is_none(), "one part: no parts listed");
    assert!(all.last_modified().is_some());
    // Only what is asked.
    let size = s3
        .get_object_attributes()
        .bucket("attrs")
        .key("doc")
        .object_attributes(ObjectAttributes::ObjectSize)
        .send()
        .await
        .expect("size only");
    assert_eq!(size.object_size(), Some(10));
    assert!(size.e_tag().is_none() && size.checksum().is_none());
    assert_eq!(
        s3_code(
            s3.get_object_attributes()
                .bucket("attrs")
                .key("missing")
                .object_attributes(ObjectAttributes::ObjectSize)
                .send()
                .await
        ),
        "NoSuchKey"
    );
    // Another organisation sees nothing of it.
    let other = app.tenant("Other").await;
    assert_eq!(
        s3_code(
            app.s3_client(&other)
                .get_object_attributes()
                .bucket("attrs")
                .key("doc")
                .object_attributes(ObjectAttributes::ObjectSize)
                .send()
                .await
        ),
        "AccessDenied"
    );
}

/// How many blob files the default region holds.
fn blob_files(app: &crate::helpers::TestApp) -> usize {
    std::fs::read_dir(app.data_dir.join("blobs/fr-par"))
        .map(|dirs| {
            dirs.filter_map(Result::ok)
                .map(|d| std::fs::read_dir(d.path()).map(|f| f.count()).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn a_bucket_holding_only_unfinished_uploads_is_deleted_with_them() {
    let app = spawn_app().await;
    let t = app.tenant("Cleaner").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "scratch").await;
    let upload = s3
        .create_multipart_upload()
        .bucket("scratch")
        .key("backup.tar")
        .send()
        .await
        .expect("upload");
    let upload_id = upload.upload_id().expect("id").to_owned();
    s3.upload_part()
        .bucket("scratch")
        .key("backup.tar")
        .upload_id(&upload_id)
        .part_number(1)
        .body(ByteStream::from(vec![7u8; 300_000]))
        .send()
        .await
        .expect("part");
    assert_eq!(blob_files(&app), 1);
    let path = format!("/orgs/{}/storage", t.org);
    let usage = || async { app.root(Method::GET, &path, None).await.1["bytes"].clone() };
    assert_eq!(usage().await, 300_000);

    // As on AWS: the bucket goes, and its uploads with it, parts released.
    s3.delete_bucket()
        .bucket("scratch")
        .send()
        .await
        .expect("a bucket with only unfinished uploads is deleted");
    assert_eq!(
        s3_code(s3.head_bucket().bucket("scratch").send().await),
        "NotFound"
    );
    assert_eq!(usage().await, 0, "the parts' bytes are no longer stored");
    assert_eq!(blob_files(&app), 0, "the parts' blobs are deleted");
    create_bucket(&s3, "scratch").await;
    let uploads = s3
        .list_multipart_uploads()
        .bucket("scratch")
        .send()
        .await
        .expect("uploads");
    assert!(uploads.uploads().is_empty(), "{uploads:?}");

    // A version or a delete marker still keeps a bucket.
    put(&s3, "scratch", "kept", ByteStream::from_static(b"x")).await;
    s3.delete_object()
        .bucket("scratch")
        .key("kept")
        .send()
        .await
        .expect("delete");
    s3.put_bucket_versioning()
        .bucket("scratch")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("versioning");
    put(&s3, "scratch", "marked", ByteStream::from_static(b"x")).await;
    s3.delete_object()
        .bucket("scratch")
        .key("marked")
        .send()
        .await
        .expect("delete marker");
    assert_eq!(
        s3_code(s3.delete_bucket().bucket("scratch").send().await),
        "BucketNotEmpty"
    );
}

#[tokio::test]
async fn an_objects_bytes_stay_in_its_buckets_region() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (paris, lyon) = (dir.path().join("paris"), dir.path().join("lyon"));
    let config = dir.path().join("regions.toml");
    std::fs::write(
        &config,
        format!(
            "[[storage.regions]]\nname = \"fr-par\"\njurisdiction = \"FR\"\nlocation = \"Paris\"\npath = \"{}\"\n\
             [[storage.regions]]\nname = \"fr-lyo\"\njurisdiction = \"FR\"\nlocation = \"Lyon\"\npath = \"{}\"\n",
            paris.display(),
            lyon.display()
        ),
    )
    .expect("config");
    let app = crate::helpers::spawn(crate::helpers::Spawn {
        args: vec!["--config".into(), config.display().to_string()],
        ..Default::default()
    })
    .await;
    let t = app.tenant("Regions").await;
    let s3 = app.s3_client(&t);
    let in_lyon = CreateBucketConfiguration::builder()
        .location_constraint(BucketLocationConstraint::from("fr-lyo"))
        .build();
    s3.create_bucket()
        .bucket("lyon-only")
        .create_bucket_configuration(in_lyon)
        .send()
        .await
        .expect("create");
    create_bucket(&s3, "paris-default").await;
    for (bucket, n) in [("lyon-only", 3), ("paris-default", 1)] {
        for i in 0..n {
            put(
                &s3,
                bucket,
                format!("k{i}"),
                ByteStream::from_static(b"bytes"),
            )
            .await;
        }
    }
    let count = |root: &std::path::Path| -> usize {
        std::fs::read_dir(root)
            .expect("region folder")
            .filter_map(Result::ok)
            .filter(|d| d.file_name() != "incoming")
            .map(|d| std::fs::read_dir(d.path()).map(|f| f.count()).unwrap_or(0))
            .sum()
    };
    assert_eq!(count(&lyon), 3, "the Lyon bucket's blobs are in Lyon");
    assert_eq!(count(&paris), 1, "and only the Paris bucket's are in Paris");
    let location = s3
        .get_bucket_location()
        .bucket("lyon-only")
        .send()
        .await
        .expect("location");
    assert_eq!(
        location.location_constraint().map(|l| l.as_str()),
        Some("fr-lyo")
    );
}

#[tokio::test]
async fn browsers_get_cors_answers_from_the_buckets_rules() {
    let app = spawn_app().await;
    let t = app.tenant("CORS").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "web-app").await;
    put(&s3, "web-app", "data.json", ByteStream::from_static(b"{}")).await;
    let http = reqwest::Client::new();
    let url = format!("{}/web-app/data.json", app.s3);
    let preflight = |origin: &'static str, method: &'static str| {
        http.request(Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "content-type, x-amz-date")
            .send()
    };
    // No rules yet: refused.
    assert_eq!(
        preflight("https://app.example.fr", "PUT")
            .await
            .expect("options")
            .status(),
        403
    );

    let cors = aws_sdk_s3::types::CorsConfiguration::builder()
        .cors_rules(
            aws_sdk_s3::types::CorsRule::builder()
                .allowed_origins("https://*.example.fr")
                .allowed_methods("GET")
                .allowed_methods("PUT")
                .allowed_headers("*")
                .expose_headers("ETag")
                .max_age_seconds(600)
                .build()
                .expect("rule"),
        )
        .build()
        .expect("cors");
    s3.put_bucket_cors()
        .bucket("web-app")
        .cors_configuration(cors)
        .send()
        .await
        .expect("put cors");

    let allowed = preflight("https://app.example.fr", "PUT")
        .await
        .expect("options");
    assert_eq!(allowed.status(), 200);
    let h = allowed.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example.fr");
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .expect("methods")
            .contains("PUT")
    );
    assert_eq!(
        h["access-control-allow-headers"],
        "content-type, x-amz-date"
    );
    assert_eq!(h["access-control-max-age"], "600");
    assert_eq!(
        preflight("https://evil.test", "PUT")
            .await
            .expect("options")
            .status(),
        403
    );
    assert_eq!(
        preflight("https://app.example.fr", "DELETE")
            .await
            .expect("options")
            .status(),
        403
    );

    // The request itself carries the headers when its origin is allowed.
    let config =
        aws_sdk_s3::presigning::PresigningConfig::expires_in(std::time::Duration::from_secs(60))
            .expect("config");
    let get = s3
        .get_object()
        .bucket("web-app")
        .key("data.json")
        .presigned(config)
        .await
        .expect("presign");
    let response = http
        .get(get.uri())
        .header("origin", "https://app.example.fr")
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://app.example.fr"
    );
    assert_eq!(response.headers()["access-control-expose-headers"], "ETag");
    let foreign = http
        .get(get.uri())
        .header("origin", "https://evil.test")
        .send()
        .await
        .expect("get");
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn writers_of_one_key_at_once_all_succeed_and_the_last_version_is_whole() {
    let app = spawn_app().await;
    let t = app.tenant("Concurrent").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "together").await;
    // Eight writers of a new key, then eight of the existing key, at once:
    // on PostgreSQL their transactions run side by side.
    for round in 0..2 {
        let bodies: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i + 10 * round; 64 * 1024]).collect();
        let mut writers = tokio::task::JoinSet::new();
        for body in &bodies {
            let (s3, body) = (s3.clone(), body.clone());
            writers.spawn(async move {
                s3.put_object()
                    .bucket("together")
                    .key("same.bin")
                    .body(ByteStream::from(body))
                    .send()
                    .await
            });
        }
        while let Some(outcome) = writers.join_next().await {
            outcome
                .expect("joined")
                .expect("every writer's PUT succeeds");
        }
        let got = get_bytes(&s3, "together", "same.bin").await;
        assert!(
            bodies.iter().any(|b| b.as_slice() == got.as_ref()),
            "the object is one writer's body, whole"
        );
    }
}

#[tokio::test]
async fn any_region_a_client_signs_with_is_accepted() {
    let app = spawn_app().await;
    let t = app.tenant("Regions").await;
    let client = |region: &'static str, secret: &str| {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .endpoint_url(&app.s3)
            .region(aws_sdk_s3::config::Region::new(region))
            .force_path_style(true)
            .credentials_provider(aws_credential_types::Credentials::new(
                &t.access_key_id,
                secret,
                None,
                None,
                "tests",
            ))
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .http_client(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                        aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                    ))
                    .build_https(),
            )
            .build();
        aws_sdk_s3::Client::from_conf(config)
    };
    // s3cmd's default (US), a capitalised name, one with an underscore:
    // signed for those regions, accepted as they are.
    for (i, region) in ["US", "EU", "fr_par"].into_iter().enumerate() {
        let s3 = client(region, &t.secret);
        let bucket = format!("region-{i}");
        create_bucket(&s3, &bucket).await;
        s3.put_object()
            .bucket(&bucket)
            .key("k")
            .body(ByteStream::from_static(b"signed"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{region}: {e:?}"));
        assert_eq!(get_bytes(&s3, &bucket, "k").await, &b"signed"[..]);
    }
    // Presigned URLs too, with a query of their own kept as it was sent.
    let config =
        aws_sdk_s3::presigning::PresigningConfig::expires_in(std::time::Duration::from_secs(300))
            .expect("config");
    let http = reqwest::Client::new();
    let us = client("US", &t.secret);
    let put = us
        .put_object()
        .bucket("region-0")
        .key("shared file.txt")
        .content_type("text/plain")
        .presigned(config.clone())
        .await
        .expect("presign put");
    let mut request = http.put(put.uri()).body("presigned in US");
    for (name, value) in put.headers() {
        request = request.header(name, value);
    }
    let answer = request.send().await.expect("put");
    assert_eq!(
        answer.status(),
        200,
        "{}",
        answer.text().await.unwrap_or_default()
    );
    let get = us
        .get_object()
        .bucket("region-0")
        .key("shared file.txt")
        .response_content_disposition("attachment; filename=\"s.txt\"")
        .presigned(config.clone())
        .await
        .expect("presign get");
    let answer = http.get(get.uri()).send().await.expect("get");
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.headers()["content-disposition"],
        "attachment; filename=\"s.txt\""
    );
    assert_eq!(answer.text().await.expect("text"), "presigned in US");
    let tampered = get.uri().replace("shared%20file.txt", "other.txt");
    let answer = http.get(&tampered).send().await.expect("get");
    assert_eq!(answer.status(), 403);
    // The signature is still checked.
    let forged = client("US", "not the secret at all, but as long as one");
    assert_eq!(
        s3_code(forged.list_buckets().send().await),
        "SignatureDoesNotMatch"
    );
    let forged = forged
        .get_object()
        .bucket("region-0")
        .key("shared file.txt")
        .presigned(config)
        .await
        .expect("presign get");
    let answer = http.get(forged.uri()).send().await.expect("get");
    assert_eq!(answer.status(), 403);
    assert!(
        answer
            .text()
            .await
            .unwrap_or_default()
            .contains("SignatureDoesNotMatch")
    );
}

/// A PUT whose body is signed chunk by chunk
/// (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, with `-TRAILER` when `trailer`),
/// signed by hand for `region` at `now`; `tamper` changes one byte of the
/// second chunk after it was signed.
fn chunked_put(
    t: &crate::helpers::Tenant,
    (url, host, path): (&str, &str, &str),
    region: &str,
    chunks: &[&[u8]],
    (trailer, tamper): (bool, bool),
) -> reqwest::RequestBuilder {
    use base64::Engine;
    use sha2::Digest as _;
    let sha = |data: &[u8]| hex::encode(sha2::Sha256::digest(data));
    let at = time::OffsetDateTime::now_utc();
    let day = format!("{:04}{:02}{:02}", at.year(), u8::from(at.month()), at.day());
    let amz_date = format!(
        "{day}T{:02}{:02}{:02}Z",
        at.hour(),
        at.minute(),
        at.second()
    );
    let scope = format!("{day}/{region}/s3/aws4_request");
    let key = [day.as_bytes(), region.as_bytes(), b"s3", b"aws4_request"]
        .iter()
        .fold(format!("AWS4{}", t.secret).into_bytes(), |k, part| {
            hmac256(&k, part)
        });
    let sign = |to_sign: String| hex::encode(hmac256(&key, to_sign.as_bytes()));
    let whole: Vec<u8> = chunks.concat();
    let crc = {
        let mut c = !0u32;
        for b in &whole {
            c ^= u32::from(*b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0xEDB8_8320
                } else {
                    c >> 1
                };
            }
        }
        base64::engine::general_purpose::STANDARD.encode((!c).to_be_bytes())
    };
    let trailers = format!("x-amz-checksum-crc32:{crc}\n");
    // The body, its signatures chained from `seed`.
    let body = |seed: &str| {
        let mut previous = seed.to_owned();
        let mut body = Vec::new();
        for (i, chunk) in chunks.iter().copied().chain([&b""[..]]).enumerate() {
            previous = sign(format!(
                "AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n{previous}\n{}\n{}",
                sha(b""),
                sha(chunk)
            ));
            body.extend_from_slice(
                format!("{:x};chunk-signature={previous}\r\n", chunk.len()).as_bytes(),
            );
            let start = body.len();
            body.extend_from_slice(chunk);
            if tamper && i == 1 {
                body[start] ^= 1;
            }
            if !chunk.is_empty() {
                body.extend_from_slice(b"\r\n");
            }
        }
        if trailer {
            let signature = sign(format!(
                "AWS4-HMAC-SHA256-TRAILER\n{amz_date}\n{scope}\n{previous}\n{}",
                sha(trailers.as_bytes())
            ));
            body.extend_from_slice(
                format!(
                    "x-amz-checksum-crc32:{crc}\r\nx-amz-trailer-signature:{signature}\r\n\r\n"
                )
                .as_bytes(),
            );
        } else {
            body.extend_from_slice(b"\r\n");
        }
        body
    };
    let length = body(&"0".repeat(64)).len();
    let payload = if trailer {
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
    } else {
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    };
    let mut headers = vec![
        ("content-encoding", "aws-chunked".to_owned()),
        ("content-length", length.to_string()),
        ("host", host.to_owned()),
        ("x-amz-content-sha256", payload.to_owned()),
        ("x-amz-date", amz_date.clone()),
        ("x-amz-decoded-content-length", whole.len().to_string()),
    ];
    if trailer {
        headers.push(("x-amz-trailer", "x-amz-checksum-crc32".to_owned()));
    }
    let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let names = headers
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(";");
    let canonical = format!("PUT\n{path}\n\n{canonical_headers}\n{names}\n{payload}");
    let seed = sign(format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha(canonical.as_bytes())
    ));
    let mut request = reqwest::Client::new().put(url).header(
        "authorization",
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope},SignedHeaders={names},Signature={seed}",
            t.access_key_id
        ),
    );
    for (name, value) in headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    request.body(body(&seed))
}

#[tokio::test]
async fn signed_streaming_bodies_are_accepted_in_any_region() {
    let app = spawn_app().await;
    let t = app.tenant("Chunks").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "chunked").await;
    let host = app.s3.trim_start_matches("http://").to_owned();
    let (a, b) = (vec![b'a'; 65536], vec![b'b'; 65536]);
    let chunks: [&[u8]; 3] = [&a, &b, b"the end"];
    let whole = chunks.concat();
    // us-east-1 is s3s's own check; US and EU are checked and signed again
    // chunk by chunk; with and without signed trailing headers.
    for region in ["us-east-1", "US", "EU"] {
        for trailer in [false, true] {
            let key = format!("{region}-{trailer}");
            let path = format!("/chunked/{key}");
            let url = format!("{}{path}", app.s3);
            let answer = chunked_put(&t, (&url, &host, &path), region, &chunks, (trailer, false))
                .send()
                .await
                .expect("answer");
            let status = answer.status();
            assert_eq!(
                status,
                200,
                "{key}: {}",
                answer.text().await.unwrap_or_default()
            );
            assert_eq!(get_bytes(&s3, "chunked", &key).await, whole, "{key}");
            // A chunk changed after it was signed is refused, and nothing
            // is stored.
            let key = format!("{key}-tampered");
            let path = format!("/chunked/{key}");
            let url = format!("{}{path}", app.s3);
            let answer = chunked_put(&t, (&url, &host, &path), region, &chunks, (trailer, true))
                .send()
                .await
                .expect("answer");
            assert!(
                answer.status().is_client_error(),
                "{key}: {}",
                answer.status()
            );
            assert_eq!(
                s3_code(s3.head_object().bucket("chunked").key(&key).send().await),
                "NotFound",
                "{key}"
            );
        }
    }
}

/// HMAC-SHA256 and HMAC-SHA1, for requests signed by hand below.
fn hmac256(key: &[u8], data: &[u8]) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(key).expect("hmac key");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

#[tokio::test]
async fn request_dates_are_read_as_aws_reads_them() {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    use sha2::Digest as _;
    let app = spawn_app().await;
    let t = app.tenant("Dates").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "dated").await;
    put(&s3, "dated", "k", ByteStream::from_static(b"dated")).await;
    let host = app.s3.trim_start_matches("http://").to_owned();
    let url = format!("{}/dated/k", app.s3);
    let http = reqwest::Client::new();
    let now = std::time::SystemTime::now();
    let http_date = |at: std::time::SystemTime| httpdate::fmt_http_date(at);
    // Signature V2: the signed date must be near now.
    let v2 = |date_header: Option<(&'static str, String)>| {
        let date_line = match &date_header {
            Some(("date", d)) => d.clone(),
            _ => String::new(),
        };
        let amz = match &date_header {
            Some(("x-amz-date", d)) => format!("x-amz-date:{d}\n"),
            _ => String::new(),
        };
        let to_sign = format!("GET\n\n\n{date_line}\n{amz}/dated/k");
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(t.secret.as_bytes()).expect("key");
        mac.update(to_sign.as_bytes());
        let signature =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let mut request = http.get(&url).header(
            "authorization",
            format!("AWS {}:{signature}", t.access_key_id),
        );
        if let Some((name, value)) = date_header {
            request = request.header(name, value);
        }
        request.send()
    };
    let ok = v2(Some(("date", http_date(now)))).await.expect("answer");
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.expect("body"), "dated");
    let ok = v2(Some(("x-amz-date", http_date(now))))
        .await
        .expect("answer");
    assert_eq!(ok.status(), 200, "x-amz-date in place of Date");
    let old = now - std::time::Duration::from_secs(3600);
    let skewed = v2(Some(("date", http_date(old)))).await.expect("answer");
    assert_eq!(skewed.status(), 403);
    assert!(
        skewed
            .text()
            .await
            .expect("body")
            .contains("<Code>RequestTimeTooSkewed</Code>")
    );
    let undated = v2(None).await.expect("answer");
    assert_eq!(undated.status(), 403);
    let body = undated.text().await.expect("body");
    assert!(
        body.contains("<Code>AccessDenied</Code>") && body.contains("valid Date"),
        "{body}"
    );
    // Signature V4 that signs Date rather than x-amz-date.
    let at = time::OffsetDateTime::from(now);
    let day = format!("{:04}{:02}{:02}", at.year(), u8::from(at.month()), at.day());
    let basic = format!(
        "{day}T{:02}{:02}{:02}Z",
        at.hour(),
        at.minute(),
        at.second()
    );
    let date = http_date(now);
    let canonical = format!(
        "GET\n/dated/k\n\ndate:{date}\nhost:{host}\nx-amz-content-sha256:UNSIGNED-PAYLOAD\n\n\
         date;host;x-amz-content-sha256\nUNSIGNED-PAYLOAD"
    );
    let scope = format!("{day}/us-east-1/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{basic}\n{scope}\n{}",
        hex::encode(sha2::Sha256::digest(canonical.as_bytes()))
    );
    let key = [day.as_bytes(), b"us-east-1", b"s3", b"aws4_request"]
        .iter()
        .fold(format!("AWS4{}", t.secret).into_bytes(), |k, part| {
            hmac256(&k, part)
        });
    let signature = hex::encode(hmac256(&key, to_sign.as_bytes()));
    let v4 = http
        .get(&url)
        .header("date", &date)
        .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        .header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders=date;host;x-amz-content-sha256, Signature={signature}",
                t.access_key_id
            ),
        )
        .send()
        .await
        .expect("answer");
    let status = v4.status();
    assert_eq!(
        (status.as_u16(), v4.text().await.expect("body")),
        (200, "dated".to_owned())
    );
}
