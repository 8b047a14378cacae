//! The S3 request path under random input: proptest draws requests (method,
//! path, sub-resources, headers, bodies — valid S3 mixed with nonsense),
//! they are signed with SigV4 so that they reach the operations, and sent to
//! the real server. No request may get a 5xx or a non-XML error, the server
//! keeps serving, and nothing a refused request carried is stored.
//! `NUAGE_FUZZ_CASES` sets the number of requests (`scripts/fuzz-s3` runs
//! many more than the suite does).

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::helpers::{Tenant, create_bucket, put, sign_request, spawn_app};

#[derive(Debug, Clone)]
struct Case {
    method: &'static str,
    bucket: String,
    key: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn case() -> impl Strategy<Value = Case> {
    let method = prop::sample::select(vec!["GET", "PUT", "POST", "DELETE", "HEAD"]);
    let bucket = prop_oneof![
        3 => Just("fuzz".to_owned()),
        1 => "[a-z0-9.-]{0,70}",
        1 => Just("other-bucket".to_owned()),
    ];
    let key = prop_oneof![
        2 => "[a-z]{1,8}(/[a-z]{1,8}){0,3}",
        1 => ".{0,40}",
        1 => Just("k".repeat(1100)),
        1 => Just(String::new()),
    ];
    let sub = prop::sample::select(vec![
        "versioning",
        "versions",
        "tagging",
        "cors",
        "lifecycle",
        "location",
        "uploads",
        "uploadId",
        "partNumber",
        "list-type",
        "prefix",
        "delimiter",
        "max-keys",
        "continuation-token",
        "start-after",
        "marker",
        "versionId",
        "encoding-type",
        "delete",
        "acl",
        "policy",
        "website",
        "x-id",
        "key-marker",
        "upload-id-marker",
        "part-number-marker",
    ]);
    let value = prop_oneof![
        Just(String::new()),
        Just("2".to_owned()),
        Just("-1".to_owned()),
        Just("99999999999999999999".to_owned()),
        Just("url".to_owned()),
        "[a-zA-Z0-9/%=+_-]{0,20}",
    ];
    let header_name = prop::sample::select(vec![
        "content-md5",
        "range",
        "if-match",
        "if-none-match",
        "if-modified-since",
        "x-amz-copy-source",
        "x-amz-copy-source-range",
        "x-amz-metadata-directive",
        "x-amz-tagging",
        "x-amz-checksum-crc32",
        "x-amz-checksum-sha256",
        "x-amz-sdk-checksum-algorithm",
        "x-amz-server-side-encryption-customer-algorithm",
        "x-amz-server-side-encryption-customer-key",
        "content-type",
        "x-amz-meta-a",
        "x-amz-bucket-region",
        "expect",
        "content-encoding",
        "x-amz-storage-class",
    ]);
    let header_value = prop_oneof![
        Just("bytes=0-10".to_owned()),
        Just("bytes=-5".to_owned()),
        Just("bytes=9-2".to_owned()),
        Just("\"abc\"".to_owned()),
        Just("*".to_owned()),
        Just("fuzz/a".to_owned()),
        Just("REPLACE".to_owned()),
        Just("AES256".to_owned()),
        Just("CRC32".to_owned()),
        Just("AAAAAA==".to_owned()),
        Just("Thu, 01 Jan 1970 00:00:00 GMT".to_owned()),
        "[ -~]{0,30}",
    ];
    let body = prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..300),
        1 => Just(b"<Delete><Object><Key>a</Key></Object></Delete>".to_vec()),
        1 => Just(b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>".to_vec()),
        1 => Just(b"<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>".to_vec()),
        1 => Just(b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>".to_vec()),
        1 => Just(b"<CORSConfiguration><CORSRule></CORSRule></CORSConfiguration>".to_vec()),
        1 => Just(b"<LifecycleConfiguration><Rule><Status>Enabled</Status></Rule></LifecycleConfiguration>".to_vec()),
        1 => Just(b"<<<not xml".to_vec()),
    ];
    (
        method,
        bucket,
        key,
        prop::collection::vec((sub, value), 0..3),
        prop::collection::vec((header_name, header_value), 0..3),
        body,
    )
        .prop_map(|(method, bucket, key, query, headers, body)| Case {
            method,
            bucket,
            key,
            query: query.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            body,
        })
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Signs and sends one request; returns the status and body.
async fn send(http: &reqwest::Client, endpoint: &str, t: &Tenant, c: &Case) -> (u16, String) {
    let path = if c.key.is_empty() {
        format!("/{}", encode(&c.bucket))
    } else {
        let key: Vec<String> = c.key.split('/').map(encode).collect();
        format!("/{}/{}", encode(&c.bucket), key.join("/"))
    };
    let query: Vec<String> = c
        .query
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                k.clone()
            } else {
                format!("{k}={}", encode(v))
            }
        })
        .collect();
    let url = if query.is_empty() {
        format!("{endpoint}{path}")
    } else {
        format!("{endpoint}{path}?{}", query.join("&"))
    };
    let headers: Vec<(String, String)> = c
        .headers
        .iter()
        .filter(|(_, v)| reqwest::header::HeaderValue::from_str(v).is_ok())
        .cloned()
        .collect();
    let Some(signature) = sign_request(t, c.method, &url, &headers, &c.body) else {
        return (0, String::new());
    };
    let mut request = http
        .request(
            reqwest::Method::from_bytes(c.method.as_bytes()).expect("method"),
            &url,
        )
        .body(c.body.clone());
    for (k, v) in headers.iter().chain(&signature) {
        request = request.header(k, v);
    }
    match request.send().await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => panic!("the server dropped a request: {e}\n{c:?}"),
    }
}

#[tokio::test]
async fn random_signed_requests_get_s3_errors_never_5xx() {
    let app = spawn_app().await;
    let t = app.tenant("Fuzz").await;
    let s3 = app.s3_client(&t);
    create_bucket(&s3, "fuzz").await;
    // Keeps the bucket from being deleted by a random DELETE.
    put(
        &s3,
        "fuzz",
        "Sentinel-0",
        aws_sdk_s3::primitives::ByteStream::from_static(b"stay"),
    )
    .await;
    let other = app.tenant("Fuzz other").await;
    app.s3_client(&other)
        .create_bucket()
        .bucket("other-bucket")
        .send()
        .await
        .expect("bucket");

    let cases: usize = std::env::var("NUAGE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let seed = std::env::var("NUAGE_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(20261128);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let strategy = case();
    // Cases whose odd shape breaks their signature count as failed
    // signatures, which the server throttles per source: they come from
    // many loopback addresses, so that every case reaches the parser (the
    // throttle has its own test, abuse::guessing_s3_secrets_is_throttled_per_source).
    let sources: Vec<reqwest::Client> = (20..120)
        .map(|i| {
            reqwest::Client::builder()
                .local_address(std::net::IpAddr::from([127, 0, 1, i]))
                .build()
                .expect("client")
        })
        .collect();
    let mut stored: BTreeSet<String> = BTreeSet::from(["Sentinel-0".to_owned()]);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for n in 0..cases {
        let c = strategy.new_tree(&mut runner).expect("case").current();
        let http = &sources[n % sources.len()];
        let (status, body) = send(http, &app.s3, &t, &c).await;
        if status == 0 {
            continue;
        }
        *statuses.entry(status).or_default() += 1;
        // 501 NotImplemented is S3's answer to an operation it does not
        // offer (an ACL, a bucket policy…); any other 5xx is a fault.
        // (A HEAD answer has no body to name the code in.)
        let unsupported =
            status == 501 && (c.method == "HEAD" || body.contains("<Code>NotImplemented</Code>"));
        assert!(
            status < 500 || unsupported,
            "a 5xx for {c:?}: {status} {body}\n{}",
            app.log()
        );
        if status >= 400 && c.method != "HEAD" {
            assert!(
                body.contains("<Code>"),
                "an error without an S3 body for {c:?}: {status} {body}"
            );
        }
        if (200..300).contains(&status)
            && c.bucket == "fuzz"
            && matches!(c.method, "PUT" | "POST")
            && !c.key.is_empty()
        {
            stored.insert(c.key.clone());
        }
    }
    // Nothing but what was acknowledged is listed in the bucket, and B's
    // bucket is untouched.
    let listed: BTreeSet<String> = s3
        .list_objects_v2()
        .bucket("fuzz")
        .send()
        .await
        .expect("list")
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    assert!(
        listed.is_subset(&stored),
        "listed {listed:?}, acknowledged {stored:?}"
    );
    let theirs = app
        .s3_client(&other)
        .list_objects_v2()
        .bucket("other-bucket")
        .send()
        .await
        .expect("list");
    assert!(theirs.contents().is_empty());
    assert!(
        statuses.keys().any(|s| *s < 300),
        "some requests succeed: {statuses:?}"
    );
    assert!(!app.log().contains("panicked"), "{}", app.log());
    eprintln!("statuses over {cases} requests: {statuses:?}");
}
