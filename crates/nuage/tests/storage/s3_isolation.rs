//! The security promises of object storage, each with a test that fails if
//! it breaks: one organisation cannot reach another's data by any operation,
//! with its keys, presigned URLs or no credentials; no object content is on
//! disk in clear; altered or moved ciphertext is refused; customer keys are
//! never kept.

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, CompletedMultipartUpload, CompletedPart, CorsConfiguration, CorsRule,
    Delete, ObjectIdentifier, Tag, Tagging, VersioningConfiguration,
};
use reqwest::Method;

use crate::helpers::{TestApp, create_bucket, get_bytes, put, s3_code, spawn_app};

/// Every file under a folder, recursively.
fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(files(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The blob ids of an object version, from its segments.
async fn blob_ids(app: &TestApp, key: &str) -> Vec<String> {
    use sqlx::Row;
    let mut db = app.database().await;
    let rows = sqlx::query("SELECT segments FROM objects WHERE key = $1 AND is_latest = 1")
        .bind(key)
        .fetch_all(&mut db)
        .await
        .expect("segments");
    rows.iter()
        .flat_map(|r| {
            let segments: serde_json::Value =
                serde_json::from_str(&r.get::<String, _>("segments")).expect("json");
            segments
                .as_array()
                .expect("list")
                .iter()
                .map(|s| s["blob"].as_str().expect("blob").to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn blob_path(app: &TestApp, blob: &str) -> std::path::PathBuf {
    app.data_dir
        .join("blobs/fr-par")
        .join(&blob[blob.len() - 2..])
        .join(blob)
}

/// Alpha's private bucket, versioned, tagged, with CORS rules, two versions
/// of an object and an upload in progress; Beta's own bucket and object:
/// what each test of another organisation's reach starts from.
struct Alpha {
    app: TestApp,
    a: crate::helpers::Tenant,
    b: crate::helpers::Tenant,
    sa: aws_sdk_s3::Client,
    sb: aws_sdk_s3::Client,
    /// The first version of `KEY`.
    v1: String,
    tags: Tagging,
    cors: CorsConfiguration,
    upload_id: String,
    part_etag: String,
}

const BUCKET: &str = "alpha-private";
const KEY: &str = "secret.txt";

impl Alpha {
    async fn new() -> Self {
        let app = spawn_app().await;
        let a = app.tenant("Alpha").await;
        let b = app.tenant("Beta").await;
        let (sa, sb) = (app.s3_client(&a), app.s3_client(&b));
        create_bucket(&sa, "alpha-private").await;
        create_bucket(&sb, "beta-own").await;
        sa.put_bucket_versioning()
            .bucket("alpha-private")
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .expect("versioning");
        let v1 = put(
            &sa,
            "alpha-private",
            "secret.txt",
            ByteStream::from_static(b"first"),
        )
        .await;
        put(
            &sa,
            "alpha-private",
            "secret.txt",
            ByteStream::from_static(b"second"),
        )
        .await;
        let v1 = v1.version_id().expect("version").to_owned();
        let tags = Tagging::builder()
            .tag_set(
                Tag::builder()
                    .key("level")
                    .value("secret")
                    .build()
                    .expect("tag"),
            )
            .build()
            .expect("tagging");
        sa.put_object_tagging()
            .bucket("alpha-private")
            .key("secret.txt")
            .tagging(tags.clone())
            .send()
            .await
            .expect("tag");
        sa.put_bucket_tagging()
            .bucket("alpha-private")
            .tagging(tags.clone())
            .send()
            .await
            .expect("bucket tag");
        let cors = CorsConfiguration::builder()
            .cors_rules(
                CorsRule::builder()
                    .allowed_methods("GET")
                    .allowed_origins("https://alpha.example")
                    .build()
                    .expect("rule"),
            )
            .build()
            .expect("cors");
        sa.put_bucket_cors()
            .bucket("alpha-private")
            .cors_configuration(cors.clone())
            .send()
            .await
            .expect("cors");
        let upload = sa
            .create_multipart_upload()
            .bucket("alpha-private")
            .key("in-progress")
            .send()
            .await
            .expect("upload");
        let upload_id = upload.upload_id().expect("id").to_owned();
        let part = sa
            .upload_part()
            .bucket("alpha-private")
            .key("in-progress")
            .upload_id(&upload_id)
            .part_number(1)
            .body(ByteStream::from_static(b"part"))
            .send()
            .await
            .expect("part");
        put(&sb, "beta-own", "mine", ByteStream::from_static(b"beta")).await;
        Self {
            part_etag: part.e_tag().expect("etag").to_owned(),
            app,
            a,
            b,
            sa,
            sb,
            v1,
            tags,
            cors,
            upload_id,
        }
    }

    /// Nothing changed for Alpha: its versions, objects, tags, CORS rules,
    /// versioning and upload in progress; nor for Beta's own bucket.
    async fn is_unchanged(&self) {
        let (sa, sb, v1, upload_id) = (&self.sa, &self.sb, self.v1.clone(), self.upload_id.clone());
        let (bucket, key) = (BUCKET, KEY);
        let versions = sa
            .list_object_versions()
            .bucket(bucket)
            .send()
            .await
            .expect("versions");
        assert_eq!(versions.versions().len(), 2);
        assert!(versions.delete_markers().is_empty());
        let keys: Vec<_> = sa
            .list_objects_v2()
            .bucket(bucket)
            .send()
            .await
            .expect("list")
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect();
        assert_eq!(keys, ["secret.txt"]);
        let body = get_bytes(sa, bucket, key).await;
        assert_eq!(body.as_ref(), b"second");
        let old = sa
            .get_object()
            .bucket(bucket)
            .key(key)
            .version_id(&v1)
            .send()
            .await
            .expect("v1")
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes();
        assert_eq!(old.as_ref(), b"first");
        assert_eq!(
            sa.get_object_tagging()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .expect("tags")
                .tag_set()
                .len(),
            1
        );
        assert_eq!(
            sa.get_bucket_tagging()
                .bucket(bucket)
                .send()
                .await
                .expect("tags")
                .tag_set()
                .len(),
            1
        );
        assert_eq!(
            sa.get_bucket_cors()
                .bucket(bucket)
                .send()
                .await
                .expect("cors")
                .cors_rules()
                .len(),
            1
        );
        let status = sa
            .get_bucket_versioning()
            .bucket(bucket)
            .send()
            .await
            .expect("versioning");
        assert_eq!(status.status(), Some(&BucketVersioningStatus::Enabled));
        let parts = sa
            .list_parts()
            .bucket(bucket)
            .key("in-progress")
            .upload_id(&upload_id)
            .send()
            .await
            .expect("parts");
        assert_eq!(parts.parts().len(), 1);
        assert!(
            sb.list_objects_v2()
                .bucket("beta-own")
                .send()
                .await
                .expect("list")
                .contents()
                .len()
                == 1
        );
    }

    /// How many of Beta's requests Alpha's access log shows refused.
    async fn refused_in_access_log(&self) -> usize {
        let (app, a, b) = (&self.app, &self.a, &self.b);
        app.maintain().await;
        let (status, log) = app
            .root(
                Method::GET,
                &format!("/orgs/{}/access-log?limit=1000", a.org),
                None,
            )
            .await;
        assert_eq!(status, 200, "{log}");
        log.as_array()
            .expect("entries")
            .iter()
            .filter(|e| e["access_key_id"] == b.access_key_id.as_str() && e["status"] == 403)
            .count()
    }
}

#[tokio::test]
async fn another_organisation_is_denied_every_bucket_operation() {
    let f = Alpha::new().await;
    let (sb, tags, cors, bucket) = (&f.sb, &f.tags, &f.cors, BUCKET);
    let denied = |code: String, what: &str| assert_eq!(code, "AccessDenied", "{what}");
    assert_eq!(
        s3_code(sb.head_bucket().bucket(bucket).send().await),
        "HTTP 403",
        "HeadBucket"
    );
    denied(
        s3_code(sb.list_objects().bucket(bucket).send().await),
        "ListObjects",
    );
    denied(
        s3_code(sb.list_objects_v2().bucket(bucket).send().await),
        "ListObjectsV2",
    );
    denied(
        s3_code(sb.list_object_versions().bucket(bucket).send().await),
        "ListObjectVersions",
    );
    denied(
        s3_code(sb.get_bucket_location().bucket(bucket).send().await),
        "GetBucketLocation",
    );
    denied(
        s3_code(sb.get_bucket_tagging().bucket(bucket).send().await),
        "GetBucketTagging",
    );
    denied(
        s3_code(
            sb.put_bucket_tagging()
                .bucket(bucket)
                .tagging(tags.clone())
                .send()
                .await,
        ),
        "PutBucketTagging",
    );
    denied(
        s3_code(sb.delete_bucket_tagging().bucket(bucket).send().await),
        "DeleteBucketTagging",
    );
    denied(
        s3_code(sb.get_bucket_cors().bucket(bucket).send().await),
        "GetBucketCors",
    );
    denied(
        s3_code(
            sb.put_bucket_cors()
                .bucket(bucket)
                .cors_configuration(cors.clone())
                .send()
                .await,
        ),
        "PutBucketCors",
    );
    denied(
        s3_code(sb.delete_bucket_cors().bucket(bucket).send().await),
        "DeleteBucketCors",
    );
    denied(
        s3_code(sb.get_bucket_versioning().bucket(bucket).send().await),
        "GetBucketVersioning",
    );
    denied(
        s3_code(
            sb.put_bucket_versioning()
                .bucket(bucket)
                .versioning_configuration(
                    VersioningConfiguration::builder()
                        .status(BucketVersioningStatus::Suspended)
                        .build(),
                )
                .send()
                .await,
        ),
        "PutBucketVersioning",
    );
    denied(
        s3_code(
            sb.get_bucket_lifecycle_configuration()
                .bucket(bucket)
                .send()
                .await,
        ),
        "GetBucketLifecycle",
    );
    denied(
        s3_code(sb.delete_bucket_lifecycle().bucket(bucket).send().await),
        "DeleteBucketLifecycle",
    );
    denied(
        s3_code(sb.delete_bucket().bucket(bucket).send().await),
        "DeleteBucket",
    );
    assert_eq!(
        s3_code(sb.create_bucket().bucket(bucket).send().await),
        "BucketAlreadyExists"
    );
    let theirs = sb.list_buckets().send().await.expect("list");
    assert_eq!(
        theirs
            .buckets()
            .iter()
            .filter_map(|b| b.name())
            .collect::<Vec<_>>(),
        ["beta-own"]
    );
    f.is_unchanged().await;
    assert_eq!(
        f.refused_in_access_log().await,
        16,
        "each refusal is in Alpha's access log"
    );
}

#[tokio::test]
async fn another_organisation_is_denied_every_object_operation() {
    let f = Alpha::new().await;
    let (sb, tags, v1, bucket, key) = (&f.sb, &f.tags, f.v1.clone(), BUCKET, KEY);
    let denied = |code: String, what: &str| assert_eq!(code, "AccessDenied", "{what}");
    denied(
        s3_code(
            sb.put_object()
                .bucket(bucket)
                .key("planted")
                .body(ByteStream::from_static(b"x"))
                .send()
                .await,
        ),
        "PutObject",
    );
    denied(
        s3_code(sb.get_object().bucket(bucket).key(key).send().await),
        "GetObject",
    );
    denied(
        s3_code(
            sb.get_object()
                .bucket(bucket)
                .key(key)
                .version_id(&v1)
                .send()
                .await,
        ),
        "GetObject by version",
    );
    assert_eq!(
        s3_code(sb.head_object().bucket(bucket).key(key).send().await),
        "HTTP 403",
        "HeadObject"
    );
    denied(
        s3_code(sb.delete_object().bucket(bucket).key(key).send().await),
        "DeleteObject",
    );
    denied(
        s3_code(
            sb.delete_object()
                .bucket(bucket)
                .key(key)
                .version_id(&v1)
                .send()
                .await,
        ),
        "DeleteObject by version",
    );
    let delete = Delete::builder()
        .objects(ObjectIdentifier::builder().key(key).build().expect("id"))
        .build()
        .expect("delete");
    let batch = sb
        .delete_objects()
        .bucket(bucket)
        .delete(delete)
        .send()
        .await;
    match batch {
        Ok(out) => {
            assert!(out.deleted().is_empty(), "DeleteObjects deleted nothing");
            assert_eq!(out.errors()[0].code(), Some("AccessDenied"));
        }
        Err(e) => assert_eq!(s3_code::<_, ()>(Err(e)), "AccessDenied"),
    }
    denied(
        s3_code(
            sb.copy_object()
                .bucket("beta-own")
                .key("stolen")
                .copy_source(format!("{bucket}/{key}"))
                .send()
                .await,
        ),
        "CopyObject out",
    );
    denied(
        s3_code(
            sb.copy_object()
                .bucket(bucket)
                .key("planted")
                .copy_source("beta-own/mine")
                .send()
                .await,
        ),
        "CopyObject in",
    );
    denied(
        s3_code(sb.get_object_tagging().bucket(bucket).key(key).send().await),
        "GetObjectTagging",
    );
    denied(
        s3_code(
            sb.put_object_tagging()
                .bucket(bucket)
                .key(key)
                .tagging(tags.clone())
                .send()
                .await,
        ),
        "PutObjectTagging",
    );
    denied(
        s3_code(
            sb.delete_object_tagging()
                .bucket(bucket)
                .key(key)
                .send()
                .await,
        ),
        "DeleteObjectTagging",
    );
    f.is_unchanged().await;
    assert_eq!(
        f.refused_in_access_log().await,
        11,
        "each refusal is in Alpha's access log"
    );
}

#[tokio::test]
async fn another_organisation_is_denied_every_multipart_operation() {
    let f = Alpha::new().await;
    let (sb, upload_id, bucket, key) = (&f.sb, f.upload_id.clone(), BUCKET, KEY);
    let denied = |code: String, what: &str| assert_eq!(code, "AccessDenied", "{what}");
    let part_etag = &f.part_etag;
    denied(
        s3_code(
            sb.create_multipart_upload()
                .bucket(bucket)
                .key("planted")
                .send()
                .await,
        ),
        "CreateMultipartUpload",
    );
    denied(
        s3_code(
            sb.upload_part()
                .bucket(bucket)
                .key("in-progress")
                .upload_id(&upload_id)
                .part_number(2)
                .body(ByteStream::from_static(b"x"))
                .send()
                .await,
        ),
        "UploadPart",
    );
    denied(
        s3_code(
            sb.upload_part_copy()
                .bucket("beta-own")
                .key("x")
                .upload_id(&upload_id)
                .part_number(1)
                .copy_source(format!("{bucket}/{key}"))
                .send()
                .await,
        ),
        "UploadPartCopy",
    );
    denied(
        s3_code(
            sb.list_parts()
                .bucket(bucket)
                .key("in-progress")
                .upload_id(&upload_id)
                .send()
                .await,
        ),
        "ListParts",
    );
    denied(
        s3_code(sb.list_multipart_uploads().bucket(bucket).send().await),
        "ListMultipartUploads",
    );
    let complete = CompletedMultipartUpload::builder()
        .parts(
            CompletedPart::builder()
                .part_number(1)
                .e_tag(part_etag)
                .build(),
        )
        .build();
    denied(
        s3_code(
            sb.complete_multipart_upload()
                .bucket(bucket)
                .key("in-progress")
                .upload_id(&upload_id)
                .multipart_upload(complete)
                .send()
                .await,
        ),
        "CompleteMultipartUpload",
    );
    denied(
        s3_code(
            sb.abort_multipart_upload()
                .bucket(bucket)
                .key("in-progress")
                .upload_id(&upload_id)
                .send()
                .await,
        ),
        "AbortMultipartUpload",
    );
    f.is_unchanged().await;
    assert_eq!(
        f.refused_in_access_log().await,
        6,
        "each refusal is in Alpha's access log"
    );
}

#[tokio::test]
async fn presigned_urls_of_another_organisation_and_anonymous_requests_are_denied() {
    let f = Alpha::new().await;
    let (app, sb, bucket, key) = (&f.app, &f.sb, BUCKET, KEY);
    // Presigned URLs made with B's keys, and requests with no credentials.
    let http = reqwest::Client::new();
    let config = PresigningConfig::expires_in(std::time::Duration::from_secs(60)).expect("config");
    let presigned = [
        sb.get_object()
            .bucket(bucket)
            .key(key)
            .presigned(config.clone())
            .await
            .expect("presign"),
        sb.put_object()
            .bucket(bucket)
            .key("planted")
            .presigned(config.clone())
            .await
            .expect("presign"),
        sb.delete_object()
            .bucket(bucket)
            .key(key)
            .presigned(config.clone())
            .await
            .expect("presign"),
    ];
    for p in presigned {
        let method = Method::from_bytes(p.method().as_bytes()).expect("method");
        let response = http
            .request(method, p.uri())
            .body("x")
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 403, "presigned {}", p.method());
        assert!(
            response
                .text()
                .await
                .unwrap_or_default()
                .contains("<Code>AccessDenied</Code>")
        );
    }
    for (method, path) in [
        (Method::GET, format!("/{bucket}/{key}")),
        (Method::PUT, format!("/{bucket}/planted")),
        (Method::DELETE, format!("/{bucket}/{key}")),
        (Method::GET, format!("/{bucket}")),
        (Method::DELETE, format!("/{bucket}")),
        (Method::GET, "/".to_owned()),
    ] {
        let response = http
            .request(method.clone(), format!("{}{path}", app.s3))
            .body("x")
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 403, "anonymous {method} {path}");
    }

    f.is_unchanged().await;
    assert_eq!(
        f.refused_in_access_log().await,
        3,
        "each refusal is in Alpha's access log"
    );
}

#[tokio::test]
async fn object_content_is_never_on_disk_in_clear() {
    let app = spawn_app().await;
    let t = app.tenant("Marker").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "marked").await;
    let marker = format!("MARKER{}", uuid::Uuid::new_v4().simple());
    let small = marker.clone().into_bytes();
    let medium = marker.repeat(200 * 1024 / marker.len()).into_bytes();
    let part = marker
        .repeat(5 * 1024 * 1024 / marker.len() + 1)
        .into_bytes();
    put(&s3, "marked", "small", ByteStream::from(small.clone())).await;
    put(&s3, "marked", "medium", ByteStream::from(medium.clone())).await;
    let upload = s3
        .create_multipart_upload()
        .bucket("marked")
        .key("multi")
        .send()
        .await
        .expect("upload");
    let id = upload.upload_id().expect("id");
    let mut parts = Vec::new();
    for n in 1..=2 {
        let p = s3
            .upload_part()
            .bucket("marked")
            .key("multi")
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(part.clone()))
            .send()
            .await
            .expect("part");
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(p.e_tag().expect("etag"))
                .build(),
        );
    }
    s3.complete_multipart_upload()
        .bucket("marked")
        .key("multi")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .expect("complete");
    // A copy and an overwrite make more blobs to look at.
    s3.copy_object()
        .bucket("marked")
        .key("copied")
        .copy_source("marked/medium")
        .send()
        .await
        .expect("copy");
    app.maintain().await;

    let mut scanned = 0u64;
    let mut blob_bytes = 0u64;
    for path in files(&app.data_dir) {
        let bytes = std::fs::read(&path).expect("read");
        assert!(
            !contains(&bytes, marker.as_bytes()),
            "the marker is in clear in {}",
            path.display()
        );
        scanned += bytes.len() as u64;
        if path.starts_with(app.data_dir.join("blobs")) {
            blob_bytes += bytes.len() as u64;
        }
    }
    // The content is there — sealed: each 64 KiB chunk grows by its 16-byte tag.
    let sealed = |n: u64| n + n.div_ceil(65536).max(1) * 16;
    let expected = sealed(small.len() as u64)
        + 2 * sealed(medium.len() as u64)
        + 2 * sealed(part.len() as u64);
    assert_eq!(blob_bytes, expected, "scanned {scanned} bytes");
    // The database (wherever it is) holds no content either.
    use sqlx::Row;
    let mut db = app.database().await;
    for table in ["objects", "upload_parts", "blobs", "access_log"] {
        let rows = sqlx::query(&format!("SELECT * FROM {table}"))
            .fetch_all(&mut db)
            .await
            .expect("rows");
        for row in rows {
            for i in 0..row.len() {
                if let Ok(Some(text)) = row.try_get::<Option<String>, _>(i) {
                    assert!(!text.contains(&marker), "the marker is in {table}");
                }
            }
        }
    }
}

#[tokio::test]
async fn altered_or_moved_ciphertext_is_refused() {
    let app = spawn_app().await;
    let t = app.tenant("Tamper").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "tamper").await;
    let content: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
    for key in ["flipped", "victim", "donor"] {
        put(&s3, "tamper", key, ByteStream::from(content.clone())).await;
    }

    // One byte flipped in the third chunk.
    let blob = blob_path(&app, &blob_ids(&app, "flipped").await[0]);
    let mut bytes = std::fs::read(&blob).expect("blob");
    let at = 2 * (65536 + 16) + 100;
    bytes[at] ^= 0x01;
    std::fs::write(&blob, &bytes).expect("write");
    let whole = s3.get_object().bucket("tamper").key("flipped").send().await;
    let served = match whole {
        Err(_) => None,
        Ok(out) => out
            .body
            .collect()
            .await
            .ok()
            .map(|b| b.into_bytes().to_vec()),
    };
    assert!(served.is_none(), "an altered object is never served whole");
    // A range in an untouched chunk still reads; one over the flipped byte does not.
    let first = s3
        .get_object()
        .bucket("tamper")
        .key("flipped")
        .range("bytes=0-999")
        .send()
        .await
        .expect("range");
    assert_eq!(
        first
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .as_ref(),
        &content[..1000]
    );
    let bad = s3
        .get_object()
        .bucket("tamper")
        .key("flipped")
        .range("bytes=131100-131200")
        .send()
        .await;
    assert_eq!(s3_code(bad), "InternalError");

    // Another object's blob of the same size, moved in place of this one's.
    let victim = blob_path(&app, &blob_ids(&app, "victim").await[0]);
    let donor = blob_path(&app, &blob_ids(&app, "donor").await[0]);
    std::fs::copy(&donor, &victim).expect("swap");
    assert_eq!(
        s3_code(
            s3.get_object()
                .bucket("tamper")
                .key("victim")
                .range("bytes=0-10")
                .send()
                .await
        ),
        "InternalError"
    );
    // The donor itself is intact.
    let donor_read = s3
        .get_object()
        .bucket("tamper")
        .key("donor")
        .send()
        .await
        .expect("donor");
    assert_eq!(
        donor_read
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .as_ref(),
        content.as_slice()
    );

    // A truncated blob (its last chunk cut off) is refused too.
    let truncated = blob_path(&app, &blob_ids(&app, "donor").await[0]);
    let len = std::fs::metadata(&truncated).expect("meta").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&truncated)
        .expect("open");
    file.set_len(len - 100).expect("truncate");
    assert_eq!(
        s3_code(
            s3.get_object()
                .bucket("tamper")
                .key("donor")
                .range("bytes=199000-199999")
                .send()
                .await
        ),
        "InternalError"
    );
    assert!(
        app.log().contains("integrity check"),
        "the fault is logged for the operator"
    );
}

#[tokio::test]
async fn customer_keys_are_required_and_never_kept() {
    use base64::Engine;
    use md5::Digest;
    let b64 = base64::engine::general_purpose::STANDARD;
    let app = spawn_app().await;
    let t = app.tenant("SSE-C").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "customer").await;
    let key: [u8; 32] = rand_key();
    let (key_b64, key_md5) = (b64.encode(key), b64.encode(md5::Md5::digest(key)));
    let other: [u8; 32] = rand_key();
    let (other_b64, other_md5) = (b64.encode(other), b64.encode(md5::Md5::digest(other)));
    let put = s3
        .put_object()
        .bucket("customer")
        .key("mine")
        .body(ByteStream::from_static(b"only with my key"))
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key_b64)
        .sse_customer_key_md5(&key_md5)
        .send()
        .await
        .expect("put");
    assert_eq!(put.sse_customer_key_md5(), Some(key_md5.as_str()));
    assert_eq!(
        s3_code(s3.get_object().bucket("customer").key("mine").send().await),
        "InvalidRequest"
    );
    let wrong = s3
        .get_object()
        .bucket("customer")
        .key("mine")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&other_b64)
        .sse_customer_key_md5(&other_md5)
        .send()
        .await;
    assert_eq!(s3_code(wrong), "AccessDenied");
    let right = s3
        .get_object()
        .bucket("customer")
        .key("mine")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key_b64)
        .sse_customer_key_md5(&key_md5)
        .send()
        .await
        .expect("get");
    assert_eq!(
        right
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .as_ref(),
        b"only with my key"
    );
    // A part copied into an upload sealed with the key says so, as AWS's do.
    let upload = s3
        .create_multipart_upload()
        .bucket("customer")
        .key("copied")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key_b64)
        .sse_customer_key_md5(&key_md5)
        .send()
        .await
        .expect("upload");
    let part = s3
        .upload_part_copy()
        .bucket("customer")
        .key("copied")
        .upload_id(upload.upload_id().expect("id"))
        .part_number(1)
        .copy_source("customer/mine")
        .copy_source_sse_customer_algorithm("AES256")
        .copy_source_sse_customer_key(&key_b64)
        .copy_source_sse_customer_key_md5(&key_md5)
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key_b64)
        .sse_customer_key_md5(&key_md5)
        .send()
        .await
        .expect("part copied");
    assert_eq!(part.sse_customer_algorithm(), Some("AES256"));
    assert_eq!(part.sse_customer_key_md5(), Some(key_md5.as_str()));
    assert!(part.server_side_encryption().is_none());
    app.maintain().await;
    for path in files(&app.data_dir) {
        let bytes = std::fs::read(&path).expect("read");
        assert!(
            !contains(&bytes, &key),
            "the raw key is in {}",
            path.display()
        );
        assert!(
            !contains(&bytes, key_b64.as_bytes()),
            "the key is in {}",
            path.display()
        );
    }
    assert!(!app.log().contains(&key_b64));
}

fn rand_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    k.copy_from_slice(&uuid::Uuid::new_v4().as_bytes().repeat(2));
    k
}

#[tokio::test]
async fn a_revoked_key_stops_at_once() {
    let app = spawn_app().await;
    let t = app.tenant("Revoked").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "revoked").await;
    let (status, body) = app
        .root(
            Method::DELETE,
            &format!("/s3-keys/{}", t.access_key_id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        s3_code(s3.list_objects_v2().bucket("revoked").send().await),
        "InvalidAccessKeyId"
    );
}

/// Reads one HTTP/1.1 response (head and a Content-Length body) from a
/// socket; `None` once the server closed it.
fn read_response(socket: &mut std::net::TcpStream) -> Option<String> {
    use std::io::Read;
    let mut data = Vec::new();
    let mut byte = [0u8; 1];
    while !data.ends_with(b"\r\n\r\n") {
        match socket.read(&mut byte) {
            Ok(1) => data.push(byte[0]),
            _ => return (!data.is_empty()).then(|| String::from_utf8_lossy(&data).into_owned()),
        }
    }
    let head = String::from_utf8_lossy(&data).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    socket.read_exact(&mut body).ok()?;
    Some(format!("{head}{}", String::from_utf8_lossy(&body)))
}

#[tokio::test]
async fn a_refused_upload_closes_its_connection_so_its_unread_body_never_starts_another_request() {
    let app = spawn_app().await;
    let a = app.tenant("Alpha").await;
    let b = app.tenant("Beta").await;
    app.s3_client(&a)
        .create_bucket()
        .bucket("alpha-data")
        .send()
        .await
        .expect("bucket");
    let address = app.s3.trim_start_matches("http://").to_owned();
    let url = format!("{}/alpha-data/planted", app.s3);
    // B's upload into A's bucket: refused on its head alone, before its
    // one-byte body is sent.
    let signed = crate::helpers::sign_request(&b, "PUT", &url, &[], b"x").expect("signed");
    let mut head = format!("PUT /alpha-data/planted HTTP/1.1\r\nHost: {address}\r\n");
    for (k, v) in &signed {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("Content-Length: 1\r\n\r\n");
    let mut socket = std::net::TcpStream::connect(&address).expect("connected");
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    std::io::Write::write_all(&mut socket, head.as_bytes()).expect("sent");
    let refused = read_response(&mut socket).expect("a response");
    assert!(refused.starts_with("http/1.1 403"), "{refused}");
    assert!(refused.contains("AccessDenied"), "{refused}");
    // The client sends the byte late, with a request right behind it on the
    // same connection. The refusal closed the connection, so no byte of a
    // refused body can be taken for the start of a request (a method
    // "xGET", whose signature cannot match); a server that kept it open
    // must at least read the byte as the body and answer the request.
    let list = format!("{}/alpha-data", app.s3);
    let signed = crate::helpers::sign_request(&a, "GET", &list, &[], b"").expect("signed");
    let mut next = format!("GET /alpha-data HTTP/1.1\r\nHost: {address}\r\n");
    for (k, v) in &signed {
        next.push_str(&format!("{k}: {v}\r\n"));
    }
    next.push_str("\r\n");
    let _ = std::io::Write::write_all(&mut socket, format!("x{next}").as_bytes());
    match read_response(&mut socket) {
        None => {}
        Some(answer) => assert!(answer.starts_with("http/1.1 200"), "{answer}"),
    }
    assert!(refused.contains("connection: close"), "{refused}");
    let err = app
        .s3_client(&a)
        .head_object()
        .bucket("alpha-data")
        .key("planted")
        .send()
        .await;
    assert_eq!(s3_code(err), "NotFound", "nothing was stored");
}
