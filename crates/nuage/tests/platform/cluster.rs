//! Several stateless nodes on one database behave as one platform.

use futures_like::join_all;
use reqwest::Method;

use crate::helpers::{Spawn, spawn, spawn_app};

/// A tiny `join_all`, to avoid a dependency for one test.
mod futures_like {
    pub async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
        let handles: Vec<_> = futures.into_iter().map(Box::pin).collect();
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            out.push(h.await);
        }
        out
    }
}

#[tokio::test]
async fn two_nodes_share_one_platform_and_one_audit_chain() {
    let a = spawn_app().await;
    let b = spawn(Spawn {
        database_url: Some(a.database_url.clone()),
        master_key_file: Some(a.data_dir.join("master.key")),
        root_token: Some(a.root_token.clone()),
        ..Spawn::default()
    })
    .await;

    // What one node creates, the other sees at once.
    let org = a.create_org("Seen by both").await;
    let (status, seen) = b.root(Method::GET, &format!("/orgs/{org}"), None).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["name"], "Seen by both");
    let (_, token) = b.create_user(&org, "both@nodes.fr", "owner").await;
    assert_eq!(
        a.call(Method::GET, "/me", &token, None).await.0,
        200,
        "a token made on B works on A"
    );

    // Both nodes append to the chain at the same time, from separate tasks.
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (node_api, token) = if i % 2 == 0 {
            (a.api.clone(), a.root_token.clone())
        } else {
            (b.api.clone(), b.root_token.clone())
        };
        tasks.push(tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{node_api}/orgs"))
                .bearer_auth(token)
                .json(&serde_json::json!({"name": format!("Concurrent {i}"), "kind": "company"}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    let statuses: Vec<u16> = join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("task").expect("sent"))
        .collect();
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");

    // root token + the platform's first keys + the house provider + first
    // org + user + the user's sign-in token + 12 organisations.
    for node in [&a, &b] {
        let verdict = node.cli(&["audit", "verify", "--json"], None);
        assert_eq!(verdict.code, 0, "{} {}", verdict.stdout, verdict.stderr);
        assert_eq!(verdict.json()["entries"], 18);
    }
    let (_, list) = a.root(Method::GET, "/orgs?limit=500", None).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(14));
}

#[tokio::test]
async fn nodes_starting_together_migrate_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("master.key");
    crate::helpers::write_master_key(&key);
    let database_url = crate::helpers::fresh_database(dir.path()).await;
    let token = crate::helpers::random_root_token();
    let spawn_node = || {
        spawn(Spawn {
            database_url: Some(database_url.clone()),
            master_key_file: Some(key.clone()),
            root_token: Some(token.clone()),
            ..Spawn::default()
        })
    };
    let (a, b) = tokio::join!(spawn_node(), spawn_node());
    let org = a.create_org("Started together").await;
    assert_eq!(
        b.root(Method::GET, &format!("/orgs/{org}"), None).await.0,
        200
    );
    let verdict = b.cli(&["audit", "verify", "--json"], None);
    assert_eq!(verdict.code, 0, "{}", verdict.stdout);
    assert_eq!(
        verdict.json()["entries"],
        4,
        "one root token, the first keys, one house provider, one organisation: {}",
        verdict.stdout
    );
}

/// Jobs spaced an hour apart: within a test, each runs once in all.
fn hourly_jobs() -> Vec<(String, String)> {
    [
        "NUAGE_CATALOGUE__WEBHOOK_RETRY_SECONDS",
        "NUAGE_BILLING__ALERT_CHECK_SECONDS",
        "NUAGE_BILLING__DELIVERY_CHECK_SECONDS",
        "NUAGE_STORAGE__MAINTENANCE_INTERVAL_SECONDS",
    ]
    .map(|k| (k.to_owned(), "3600".to_owned()))
    .to_vec()
}

#[tokio::test]
async fn background_jobs_run_under_one_lease_shared_by_the_nodes() {
    let a = spawn(Spawn {
        env: hourly_jobs(),
        ..Spawn::default()
    })
    .await;
    let b = spawn(Spawn {
        database_url: Some(a.database_url.clone()),
        master_key_file: Some(a.data_dir.join("master.key")),
        root_token: Some(a.root_token.clone()),
        env: hourly_jobs(),
        ..Spawn::default()
    })
    .await;

    // Every job of the platform is known to both nodes, and has run once
    // (at start-up, on whichever node took it first), not once per node;
    // the search index's upkeep and the keys' rewrap run at each node's
    // start, storage upkeep
    // only after its first interval.
    let names = [
        "invoice-deliveries",
        "key-rewrap",
        "quota-alerts",
        "search-index",
        "sessions",
        "webhooks",
    ];
    let expected = [1, 2, 1, 2, 1, 1];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (status, jobs) = b.root(Method::GET, "/jobs", None).await;
        assert_eq!(status, 200, "{jobs}");
        let listed: Vec<&str> = jobs
            .as_array()
            .expect("a list")
            .iter()
            .map(|j| j["name"].as_str().expect("a name"))
            .collect();
        let runs: Vec<i64> = jobs
            .as_array()
            .expect("a list")
            .iter()
            .map(|j| j["runs"].as_i64().unwrap_or_default())
            .collect();
        if runs.len() == names.len() && runs.iter().zip(expected).all(|(&r, e)| r >= e) {
            assert_eq!(listed, names, "{jobs}");
            assert_eq!(runs, expected, "{jobs}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{jobs}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // The operator runs one now, on node B; node A sees B ran it.
    let (status, run) = b.root(Method::POST, "/jobs/storage-upkeep/run", None).await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["ran"], true, "{run}");
    let (_, jobs) = a.root(Method::GET, "/jobs", None).await;
    let upkeep = jobs
        .as_array()
        .expect("a list")
        .iter()
        .find(|j| j["name"] == "storage-upkeep")
        .expect("listed");
    assert_eq!(upkeep["runs"], 1, "{upkeep}");
    assert!(
        upkeep["last_outcome"]
            .as_str()
            .expect("an outcome")
            .contains("released blobs")
    );
    let (status, _) = a.root(Method::POST, "/jobs/no-such-job/run", None).await;
    assert_eq!(status, 404);

    // Only operators see or run jobs.
    let org = a.create_org("Not the operator").await;
    let (_, token) = a.create_user(&org, "owner@jobs.fr", "owner").await;
    assert_eq!(a.call(Method::GET, "/jobs", &token, None).await.0, 403);
    assert_eq!(
        a.call(Method::POST, "/jobs/billing/run", &token, None)
            .await
            .0,
        403
    );
}
