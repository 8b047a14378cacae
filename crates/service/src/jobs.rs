//! Background jobs: the work the platform does on its own (billing runs,
//! webhook deliveries, storage upkeep, quota alerts, housekeeping), each
//! run by one node at a time under a lease kept in the database.
//!
//! - A job runs at most once per interval across all nodes: a node takes
//!   the lease only when nobody holds it and the last run finished at least
//!   an interval ago.
//! - A lease lasts [`LEASE`] and its holder renews it while the job runs; a
//!   node that dies stops renewing, the lease lapses, and another node takes
//!   the job over at its next attempt.
//! - A job can be asked to run now (a webhook to deliver after an order;
//!   the operator's `POST /api/v1/jobs/{name}/run`): it runs at once unless
//!   another node is running it.
//! - Each run's outcome or error is kept on the job's row
//!   (`GET /api/v1/jobs`).

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use nuage_db::Db;
use nuage_db::repo::jobs as repo;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::{Principal, ServiceError, ServiceResult};

/// How long a lease lasts without renewal.
pub const LEASE: Duration = Duration::from_secs(60);

/// What a run does; its `Ok` is a one-line summary kept on the job's row.
pub type Work = Arc<dyn Fn() -> BoxFuture<'static, ServiceResult<String>> + Send + Sync>;

/// A job and its schedule.
#[derive(Clone)]
pub struct Job {
    pub name: &'static str,
    pub every: Duration,
    pub work: Work,
    pub first: FirstRun,
}

/// When a node first tries a job after it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstRun {
    /// At once, if the job is due (no node ran it this interval).
    WhenDue,
    /// At once, even if another node ran it moments ago (upkeep of what a
    /// start changes, such as a rebuilt search index).
    AtStart,
    /// One interval later (upkeep that must not act on what a start-up is
    /// still doing).
    AfterOneInterval,
}

impl Job {
    pub fn new<F, Fut>(name: &'static str, every: Duration, work: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ServiceResult<String>> + Send + 'static,
    {
        Self {
            name,
            every,
            work: Arc::new(move || Box::pin(work())),
            first: FirstRun::WhenDue,
        }
    }

    /// The same job, first tried at a node's start as `first` says.
    pub fn first(self, first: FirstRun) -> Self {
        Self { first, ..self }
    }

    /// A job whose work is `work(state)`, with a copy of `state` each run.
    pub fn with<S, F, Fut>(name: &'static str, every: Duration, state: S, work: F) -> Self
    where
        S: Clone + Send + Sync + 'static,
        F: Fn(S) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ServiceResult<String>> + Send + 'static,
    {
        Self::new(name, every, move || work(state.clone()))
    }
}

/// A job's state, as every node sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobState {
    pub name: String,
    /// The node running it, while a lease is held.
    pub running_on: Option<String>,
    /// The node that ran it last.
    pub last_node: Option<String>,
    pub last_started_ms: Option<i64>,
    pub last_finished_ms: Option<i64>,
    pub runs: i64,
    /// What the last successful run did.
    pub last_outcome: Option<String>,
    /// Why the last run failed, when it did.
    pub last_error: Option<String>,
}

/// The outcome of asking a job to run now.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunOutcome {
    pub name: String,
    /// False when another node was running it (its run stands for this one).
    pub ran: bool,
    pub outcome: Option<String>,
}

/// This node's jobs.
#[derive(Clone)]
pub struct Jobs {
    db: Db,
    node: Arc<str>,
    clock: fn() -> i64,
    jobs: Arc<Vec<(Job, Arc<Notify>)>>,
}

impl Jobs {
    /// The jobs `node` (a name unique among the nodes) takes part in; `clock`
    /// says the time in ms since the epoch.
    pub fn new(db: Db, node: impl Into<Arc<str>>, clock: fn() -> i64, jobs: Vec<Job>) -> Self {
        Self {
            db,
            node: node.into(),
            clock,
            jobs: Arc::new(
                jobs.into_iter()
                    .map(|j| (j, Arc::new(Notify::new())))
                    .collect(),
            ),
        }
    }

    /// Starts one loop per job; they end when the handles are aborted.
    pub fn start(&self) -> Vec<JoinHandle<()>> {
        self.jobs
            .iter()
            .map(|(job, wake)| {
                let jobs = self.clone();
                let (job, wake) = (job.clone(), wake.clone());
                tokio::spawn(async move {
                    if job.first == FirstRun::AfterOneInterval {
                        tokio::time::sleep(job.every).await;
                    }
                    let mut when_due = job.first != FirstRun::AtStart;
                    loop {
                        let attempt = jobs.attempt(&job, when_due).await;
                        when_due = true;
                        let wait = match attempt {
                            Ok(_) => job.every,
                            Err(e) => {
                                tracing::error!(job = job.name, error = %e, "a job could not be run; it is tried again later");
                                job.every.min(Duration::from_secs(60))
                            }
                        };
                        tokio::select! {
                            _ = wake.notified() => {
                                if let Err(e) = jobs.attempt(&job, false).await {
                                    tracing::error!(job = job.name, error = %e, "a job asked to run now could not be run");
                                }
                            }
                            _ = tokio::time::sleep(wait) => {}
                        }
                    }
                })
            })
            .collect()
    }

    /// Asks this node's loop of `name` to run it soon, without waiting.
    pub fn wake(&self, name: &str) {
        if let Some((_, wake)) = self.jobs.iter().find(|(j, _)| j.name == name) {
            wake.notify_one();
        }
    }

    /// Runs `name` now on this node and waits for it, unless another node
    /// is running it: operators only.
    pub async fn run_now(&self, who: &Principal, name: &str) -> ServiceResult<RunOutcome> {
        operators_only(who)?;
        let Some((job, _)) = self.jobs.iter().find(|(j, _)| j.name == name) else {
            return Err(ServiceError::NotFound("job"));
        };
        let outcome = self.attempt(job, false).await?;
        Ok(RunOutcome {
            name: name.to_owned(),
            ran: outcome.is_some(),
            outcome,
        })
    }

    /// Runs, one after the other, each of this node's jobs that is due and
    /// that no node is running: what the loops do, at once. The names of
    /// the jobs run, with their outcomes.
    pub async fn run_due(&self) -> ServiceResult<Vec<(&'static str, String)>> {
        let mut ran = Vec::new();
        for (job, _) in self.jobs.iter() {
            if let Some(outcome) = self.attempt(job, true).await? {
                ran.push((job.name, outcome));
            }
        }
        Ok(ran)
    }

    /// Every job's shared state: operators only.
    pub async fn states(&self, who: &Principal) -> ServiceResult<Vec<JobState>> {
        operators_only(who)?;
        let mut conn = self.db.acquire().await?;
        let now = (self.clock)();
        Ok(repo::list(&mut conn)
            .await?
            .into_iter()
            .map(|row| JobState {
                running_on: (row.lease_until > now)
                    .then(|| row.holder.clone())
                    .flatten(),
                last_node: row.holder,
                name: row.name,
                last_started_ms: row.started_at,
                last_finished_ms: row.finished_at,
                runs: row.runs,
                last_outcome: row.last_outcome,
                last_error: row.last_error,
            })
            .collect())
    }

    /// Takes the lease of `job` (when it is due, if `when_due`), runs it
    /// while renewing the lease, and records the outcome. `None` when the
    /// lease was not taken.
    async fn attempt(&self, job: &Job, when_due: bool) -> ServiceResult<Option<String>> {
        let now = (self.clock)();
        let due_after = when_due.then(|| now - job.every.as_millis() as i64);
        let lease_ms = LEASE.as_millis() as i64;
        let taken = repo::claim(
            &mut *self.db.acquire().await?,
            job.name,
            &self.node,
            now,
            now + lease_ms,
            due_after,
        )
        .await?;
        if !taken {
            return Ok(None);
        }
        let mut run = tokio::spawn((job.work)());
        let mut renew = tokio::time::interval(LEASE / 3);
        renew.tick().await;
        let result = loop {
            tokio::select! {
                result = &mut run => break result.map_err(|e| ServiceError::Internal(format!("the job {} stopped: {e}", job.name))).and_then(|r| r),
                _ = renew.tick() => {
                    let until = (self.clock)() + lease_ms;
                    if let Ok(mut conn) = self.db.acquire().await
                        && !repo::renew(&mut conn, job.name, &self.node, until).await.unwrap_or(true)
                    {
                        tracing::warn!(job = job.name, "this node's lease lapsed and another node took the job over");
                    }
                }
            }
        };
        let finished = (self.clock)();
        let mut conn = self.db.acquire().await?;
        match &result {
            Ok(outcome) => {
                repo::finish(&mut conn, job.name, &self.node, finished, Ok(outcome)).await?;
                tracing::debug!(job = job.name, outcome, "job run");
            }
            Err(e) => {
                repo::finish(
                    &mut conn,
                    job.name,
                    &self.node,
                    finished,
                    Err(&e.to_string()),
                )
                .await?;
                tracing::error!(job = job.name, error = %e, "a job's run failed; it runs again at its next turn");
            }
        }
        result.map(Some)
    }
}

fn operators_only(who: &Principal) -> ServiceResult<()> {
    match who {
        Principal::Anonymous => Err(ServiceError::Unauthenticated("sign in first".into())),
        w if w.is_operator() => Ok(()),
        _ => Err(ServiceError::Forbidden("operators only".into())),
    }
}
