//! Background jobs under leases, on a real database (SQLite, or PostgreSQL
//! when `NUAGE_TEST_DATABASE_URL` names a server): several nodes run each
//! job once per interval, one at a time, and a dead node's job is taken
//! over when its lease lapses.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use nuage_service::Principal;
use nuage_service::jobs::{Job, Jobs, LEASE};

/// The nodes' shared clock, set by the test (one test per process under
/// nextest; each test below uses its own clock).
static CLOCK_A: AtomicI64 = AtomicI64::new(1_000_000);
static CLOCK_B: AtomicI64 = AtomicI64::new(1_000_000);

fn clock_a() -> i64 {
    CLOCK_A.load(Ordering::SeqCst)
}

fn clock_b() -> i64 {
    CLOCK_B.load(Ordering::SeqCst)
}

#[path = "../../db/tests/support/test_db.rs"]
mod test_db;
use test_db::TestDb;

const EVERY: Duration = Duration::from_secs(300);

fn counting(runs: &Arc<AtomicUsize>) -> Job {
    Job::with("count", EVERY, runs.clone(), |runs| async move {
        Ok(format!("run {}", runs.fetch_add(1, Ordering::SeqCst) + 1))
    })
}

#[tokio::test]
async fn two_nodes_run_a_job_once_per_interval() {
    let db = TestDb::new().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let a = Jobs::new(db.node().await, "node-a", clock_a, vec![counting(&runs)]);
    let b = Jobs::new(db.node().await, "node-b", clock_a, vec![counting(&runs)]);

    assert_eq!(
        a.run_due().await.expect("a"),
        [("count", "run 1".to_owned())]
    );
    assert!(
        b.run_due().await.expect("b").is_empty(),
        "it ran moments ago"
    );
    CLOCK_A.fetch_add(EVERY.as_millis() as i64 - 1, Ordering::SeqCst);
    assert!(a.run_due().await.expect("a").is_empty());
    assert!(b.run_due().await.expect("b").is_empty());
    CLOCK_A.fetch_add(1, Ordering::SeqCst);
    assert_eq!(
        b.run_due().await.expect("b"),
        [("count", "run 2".to_owned())]
    );
    assert!(
        a.run_due().await.expect("a").is_empty(),
        "b ran it this interval"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);

    let states = a.states(&Principal::System).await.expect("states");
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].runs, 2);
    assert_eq!(states[0].last_node.as_deref(), Some("node-b"));
    assert_eq!(states[0].running_on, None);
    assert_eq!(states[0].last_outcome.as_deref(), Some("run 2"));
    // Only operators see or run jobs.
    let member = Principal::User {
        id: nuage_domain::ids::UserId::new(),
        is_operator: false,
    };
    assert!(a.states(&member).await.is_err());
    assert!(a.run_now(&member, "count").await.is_err());
    assert!(a.run_now(&Principal::System, "nothing").await.is_err());
    // Asked to run now, it runs whether due or not.
    let now = a
        .run_now(&Principal::System, "count")
        .await
        .expect("run now");
    assert!(now.ran);
    assert_eq!(now.outcome.as_deref(), Some("run 3"));
    db.drop_database().await;
}

#[tokio::test]
async fn a_dead_nodes_job_is_taken_over_when_its_lease_lapses() {
    let db = TestDb::new().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(tokio::sync::Notify::new());
    let hanging = Job::with("count", EVERY, release.clone(), |release| async move {
        release.notified().await;
        Ok("released".into())
    });
    let a = Jobs::new(db.node().await, "node-a", clock_b, vec![hanging]);
    let b = Jobs::new(db.node().await, "node-b", clock_b, vec![counting(&runs)]);

    // Node a takes the job and hangs in it.
    let running = tokio::spawn({
        let a = a.clone();
        async move { a.run_due().await }
    });
    let states = loop {
        let states = b.states(&Principal::System).await.expect("states");
        if states.first().is_some_and(|s| s.running_on.is_some()) {
            break states;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(states[0].running_on.as_deref(), Some("node-a"));
    // While a holds the lease, b neither runs it when due nor when asked.
    assert!(b.run_due().await.expect("b").is_empty());
    let asked = b.run_now(&Principal::System, "count").await.expect("b");
    assert!(!asked.ran);
    // Node a dies: its lease is no longer renewed. Until the lease lapses
    // the job waits; then b takes it over.
    running.abort();
    let _ = running.await;
    CLOCK_B.fetch_add(LEASE.as_millis() as i64 - 1, Ordering::SeqCst);
    assert!(
        b.run_due().await.expect("b").is_empty(),
        "the lease still holds"
    );
    CLOCK_B.fetch_add(1, Ordering::SeqCst);
    assert_eq!(
        b.run_due().await.expect("b"),
        [("count", "run 1".to_owned())]
    );
    let states = b.states(&Principal::System).await.expect("states");
    assert_eq!(states[0].last_node.as_deref(), Some("node-b"));
    assert_eq!(states[0].runs, 1, "a's run never finished");
    db.drop_database().await;
}
