//! Crash safety: a load of uploads, overwrites, deletes and multipart
//! completions, the server killed with SIGKILL at random moments, restarted
//! each time on the same data. Every acknowledged write reads back exactly;
//! a write in flight at the kill is either whole or absent; nothing else is
//! visible; and after collection the blob folder holds exactly the blobs the
//! metadata refers to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use sha2::{Digest, Sha256};

use crate::helpers::{Spawn, Tenant, TestApp, spawn};

type Sum = [u8; 32];

/// What a key may hold: a content digest, or nothing.
type Allowed = HashMap<String, Vec<Option<Sum>>>;

/// A small deterministic generator (xorshift), so that a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend(self.next().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

fn digest(bytes: &[u8]) -> Sum {
    Sha256::digest(bytes).into()
}

/// One writer: its own keys, one operation at a time, until the server dies.
async fn writer(s3: aws_sdk_s3::Client, task: usize, seed: u64, allowed: Arc<Mutex<Allowed>>) {
    let mut rng = Rng(seed | 1);
    loop {
        let key = format!("t{task}/k{}", rng.below(6));
        let before = allowed
            .lock()
            .expect("lock")
            .get(&key)
            .and_then(|states| (states.len() == 1).then(|| states[0]))
            .unwrap_or(None);
        let choice = rng.below(10);
        let (after, outcome) = if choice < 6 {
            let len = rng.below(300_000) as usize;
            let body = rng.bytes(len);
            let after = Some(digest(&body));
            mark(&allowed, &key, before, after);
            let r = s3
                .put_object()
                .bucket("crash")
                .key(&key)
                .body(ByteStream::from(body))
                .send()
                .await;
            (after, r.is_ok())
        } else if choice < 8 {
            mark(&allowed, &key, before, None);
            let r = s3.delete_object().bucket("crash").key(&key).send().await;
            (None, r.is_ok())
        } else {
            let last = rng.below(1000) as usize + 1;
            let parts: Vec<Vec<u8>> = vec![rng.bytes(5 * 1024 * 1024), rng.bytes(last)];
            let whole: Vec<u8> = parts.concat();
            let after = Some(digest(&whole));
            mark(&allowed, &key, before, after);
            (after, multipart(&s3, &key, parts).await)
        };
        if !outcome {
            // The server is gone: this key may hold the old state or the new.
            return;
        }
        allowed.lock().expect("lock").insert(key, vec![after]);
    }
}

/// Before an operation, its key may end in either state.
fn mark(allowed: &Arc<Mutex<Allowed>>, key: &str, before: Option<Sum>, after: Option<Sum>) {
    allowed
        .lock()
        .expect("lock")
        .insert(key.to_owned(), vec![before, after]);
}

async fn multipart(s3: &aws_sdk_s3::Client, key: &str, parts: Vec<Vec<u8>>) -> bool {
    let Ok(upload) = s3
        .create_multipart_upload()
        .bucket("crash")
        .key(key)
        .send()
        .await
    else {
        return false;
    };
    let id = upload.upload_id().unwrap_or_default().to_owned();
    let mut done = Vec::new();
    for (i, part) in parts.into_iter().enumerate() {
        let n = i as i32 + 1;
        match s3
            .upload_part()
            .bucket("crash")
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(part))
            .send()
            .await
        {
            Ok(p) => done.push(
                CompletedPart::builder()
                    .part_number(n)
                    .e_tag(p.e_tag().unwrap_or_default())
                    .build(),
            ),
            Err(_) => return false,
        }
    }
    s3.complete_multipart_upload()
        .bucket("crash")
        .key(key)
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .is_ok()
}

async fn restart(data_dir: &std::path::Path, first: &crate::helpers::PlaceholderApp) -> TestApp {
    spawn(Spawn {
        data_dir: Some(data_dir.to_owned()),
        database_url: Some(first.database_url.clone()),
        root_token: Some(first.root_token.clone()),
        env: vec![("NUAGE_STORAGE__ORPHAN_GRACE_SECONDS".into(), "0".into())],
        process: true,
        ..Spawn::default()
    })
    .await
}

/// Every key holds one of the states it may hold, and nothing else is listed.
async fn check(app: &TestApp, t: &Tenant, allowed: &Allowed, round: usize) {
    let s3 = app.s3_client(t);
    let mut listed = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket("crash")
            .set_continuation_token(token.clone())
            .send()
            .await
            .expect("list");
        listed.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        if page.is_truncated() != Some(true) {
            break;
        }
        token = page.next_continuation_token().map(str::to_owned);
    }
    for key in &listed {
        assert!(
            allowed.contains_key(key),
            "round {round}: {key} is visible but was never written"
        );
    }
    for (key, states) in allowed {
        let got = match s3.get_object().bucket("crash").key(key).send().await {
            Ok(out) => Some(digest(
                &out.body.collect().await.expect("body").into_bytes(),
            )),
            Err(e) => {
                let code = e
                    .as_service_error()
                    .and_then(|s| aws_sdk_s3::error::ProvideErrorMetadata::code(s))
                    .map(str::to_owned);
                assert_eq!(
                    code.as_deref(),
                    Some("NoSuchKey"),
                    "round {round}: {key}: {e:?}"
                );
                None
            }
        };
        assert!(
            states.contains(&got),
            "round {round}: {key} holds neither an acknowledged state nor the one in flight"
        );
        assert_eq!(
            got.is_some(),
            listed.contains(key),
            "round {round}: {key} listed iff readable"
        );
    }
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill_and_nothing_else_is_visible() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let first = spawn(Spawn {
        data_dir: Some(data_dir.clone()),
        env: vec![("NUAGE_STORAGE__ORPHAN_GRACE_SECONDS".into(), "0".into())],
        process: true,
        ..Spawn::default()
    })
    .await;
    let t = first.tenant("Crash").await;
    first
        .s3_client(&t)
        .create_bucket()
        .bucket("crash")
        .send()
        .await
        .expect("bucket");
    let allowed: Arc<Mutex<Allowed>> = Arc::new(Mutex::new(HashMap::new()));
    let seed: u64 = std::env::var("NUAGE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026);
    let mut rng = Rng(seed);
    let rounds = 5;
    let mut app = first;
    let database_url = app.database_url.clone();
    let root_token = app.root_token.clone();
    for round in 0..rounds {
        let s3 = app.s3_client(&t);
        let tasks: Vec<_> = (0..4)
            .map(|task| tokio::spawn(writer(s3.clone(), task, rng.next(), allowed.clone())))
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(300 + rng.below(900))).await;
        std::process::Command::new("kill")
            .args(["-9", &app.pid().to_string()])
            .status()
            .expect("kill");
        for task in tasks {
            task.await.expect("writer");
        }
        drop(app);
        app = restart(&data_dir, &TestApp::placeholder(&database_url, &root_token)).await;
        let snapshot = allowed.lock().expect("lock").clone();
        check(&app, &t, &snapshot, round).await;
        // Settle each key on what it holds now, for the next round.
        let s3 = app.s3_client(&t);
        let mut settled = HashMap::new();
        for key in snapshot.keys() {
            let now = match s3.get_object().bucket("crash").key(key).send().await {
                Ok(out) => Some(digest(
                    &out.body.collect().await.expect("body").into_bytes(),
                )),
                Err(_) => None,
            };
            settled.insert(key.clone(), vec![now]);
        }
        *allowed.lock().expect("lock") = settled;
    }

    // Leftovers of the kills: uploads never completed, blobs never committed.
    let s3 = app.s3_client(&t);
    let uploads = s3
        .list_multipart_uploads()
        .bucket("crash")
        .send()
        .await
        .expect("uploads");
    for u in uploads.uploads() {
        s3.abort_multipart_upload()
            .bucket("crash")
            .key(u.key().expect("key"))
            .upload_id(u.upload_id().expect("id"))
            .send()
            .await
            .expect("abort");
    }
    app.maintain().await;
    use sqlx::Row;
    let mut db = app.database().await;
    let held: std::collections::BTreeSet<String> = sqlx::query("SELECT blob_id FROM blobs")
        .fetch_all(&mut db)
        .await
        .expect("blobs")
        .iter()
        .map(|r| r.get::<String, _>("blob_id"))
        .collect();
    let blobs = data_dir.join("blobs/fr-par");
    let mut on_disk = std::collections::BTreeSet::new();
    for fan in std::fs::read_dir(&blobs).expect("blob folder").flatten() {
        for file in std::fs::read_dir(fan.path()).expect("fan").flatten() {
            let name = file.file_name().into_string().expect("name");
            assert_ne!(fan.file_name(), "incoming", "{name} was left in incoming/");
            on_disk.insert(name);
        }
    }
    assert_eq!(
        on_disk, held,
        "the blob folder holds exactly the blobs the metadata refers to"
    );
    let final_state = allowed.lock().expect("lock").clone();
    check(&app, &t, &final_state, rounds).await;
    assert!(
        final_state.values().any(|s| s[0].is_some()),
        "the load stored something"
    );
}
