//! What happens to a published call before its deadline: suppliers' private
//! questions and the buyer's public answers, and versioned amendments that
//! every bidder is told of.

use nuage_db::repo::tenders::{self as repo, QuestionRow, VersionRow};
use nuage_domain::DomainError;
use nuage_domain::catalogue::short_text;
use nuage_domain::ids::OrgId;
use nuage_domain::org::Permission;
use nuage_domain::tender::{TenderSpec, Warning};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use nuage_market::{parse_doc, to_json};

use crate::Procurement;
use nuage_service::{AuditEvent, Principal, RequestMeta, ServiceError, ServiceResult};

/// A question as its reader may see it: the public sees answered ones
/// without the asker; the asker its own; the buyer all, with the asker.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QuestionView {
    pub id: String,
    pub question: String,
    pub asked_at_ms: i64,
    pub answer: Option<String>,
    pub answered_at_ms: Option<i64>,
    /// For the buyer only.
    pub asker_id: Option<String>,
}

/// One version of a call: its publication, then each amendment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionView {
    pub version: i64,
    pub summary: String,
    /// The fields this version changed.
    pub changes: Vec<String>,
    pub at_ms: i64,
    pub spec: TenderSpec,
}

/// An amendment as recorded, with what the buyer should know.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AmendmentView {
    pub version: VersionView,
    pub warnings: Vec<Warning>,
    /// How many bidders were told (their bid may need replacing).
    pub bidders_told: usize,
}

fn version_view(v: VersionRow) -> ServiceResult<VersionView> {
    Ok(VersionView {
        version: v.version,
        summary: v.summary,
        changes: parse_doc(&v.changes)?,
        at_ms: v.at,
        spec: parse_doc(&v.spec)?,
    })
}

impl Procurement {
    /// A supplier's private question, before the questions close.
    pub async fn ask_question(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        id: &str,
        asker: OrgId,
        question: &str,
    ) -> ServiceResult<QuestionView> {
        let question = question.trim();
        short_text(question, "question", 5000, true)?;
        let now = self.now_ms();
        let mut tx = self.platform().db().begin_write().await?;
        self.platform()
            .authorize_org(&mut tx, who, asker, Permission::Manage)
            .await?;
        let tender = self.published_tender(&mut tx, id).await?;
        if tender.buyer_org_id == asker.to_string() {
            return Err(ServiceError::Conflict(
                "the buyer answers questions; it does not ask them".into(),
            ));
        }
        let spec: TenderSpec = parse_doc(&tender.spec)?;
        if tender.state != "published" || now >= spec.questions_close() {
            return Err(ServiceError::Conflict(format!(
                "questions closed at {} (ms since the epoch)",
                spec.questions_close()
            )));
        }
        let row = QuestionRow {
            id: uuid::Uuid::now_v7().to_string(),
            tender_id: id.to_owned(),
            asker_org_id: asker.to_string(),
            question: question.to_owned(),
            asked_by: who.actor(),
            asked_at: now,
            answer: None,
            answered_by: None,
            answered_at: None,
        };
        repo::insert_question(&mut tx, &row).await?;
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("tender.question", format!("tender:{id}"))
                    .org(asker)
                    .details(serde_json::json!({ "question": row.id })),
            )
            .await?;
        Ok(view(row, false))
    }

    /// The buyer's answer, published to all, before the deadline.
    pub async fn answer_question(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        id: &str,
        question_id: &str,
        answer: &str,
    ) -> ServiceResult<QuestionView> {
        let answer = answer.trim();
        short_text(answer, "answer", 10_000, true)?;
        let now = self.now_ms();
        let mut tx = self.platform().db().begin_write().await?;
        let tender = self.own_tender(&mut tx, who, id).await?;
        if tender.state != "published" || now >= tender.deadline_at {
            return Err(ServiceError::Conflict(
                "answers are given before the deadline".into(),
            ));
        }
        if !repo::answer_question(&mut tx, id, question_id, answer, &who.actor(), now).await? {
            return Err(
                match repo::questions(&mut tx, id)
                    .await?
                    .iter()
                    .any(|q| q.id == question_id)
                {
                    true => ServiceError::Conflict("this question is already answered".into()),
                    false => ServiceError::NotFound("question"),
                },
            );
        }
        let row = repo::questions(&mut tx, id)
            .await?
            .into_iter()
            .find(|q| q.id == question_id)
            .ok_or(ServiceError::NotFound("question"))?;
        self.catalogue()
            .enqueue_event(
                &mut tx,
                &row.asker_org_id,
                "tender.answered",
                "question",
                serde_json::json!({"tender_id": id, "question_id": row.id, "answer": answer}),
            )
            .await?;
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("tender.answer", format!("tender:{id}"))
                    .org(&tender.buyer_org_id)
                    .details(serde_json::json!({ "question": row.id })),
            )
            .await?;
        self.catalogue().wake_deliveries();
        Ok(view(row, true))
    }

    /// A call's questions: answered ones for everyone, the unanswered ones
    /// of `asker` to its members, every one to the buyer.
    pub async fn questions(
        &self,
        who: Option<&Principal>,
        id: &str,
        asker: Option<OrgId>,
    ) -> ServiceResult<Vec<QuestionView>> {
        let mut conn = self.platform().db().acquire().await?;
        let tender = self.published_tender(&mut conn, id).await?;
        let is_buyer = match who {
            Some(w) => self
                .platform()
                .authorize_org(
                    &mut conn,
                    w,
                    OrgId::parse(&tender.buyer_org_id)?,
                    Permission::RunCalls,
                )
                .await
                .is_ok(),
            None => false,
        };
        let own = match (who, asker) {
            (Some(w), Some(org)) => {
                self.platform()
                    .authorize_org(&mut conn, w, org, Permission::Use)
                    .await?;
                Some(org.to_string())
            }
            _ => None,
        };
        Ok(repo::questions(&mut conn, id)
            .await?
            .into_iter()
            .filter(|q| is_buyer || q.answer.is_some() || own.as_deref() == Some(&q.asker_org_id))
            .map(|q| view(q, is_buyer))
            .collect())
    }

    /// Amends a published call before its deadline: a new version, what
    /// changed, and every bidder told. The deadline may move later, never
    /// earlier.
    pub async fn amend_tender(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        id: &str,
        spec: TenderSpec,
        summary: &str,
    ) -> ServiceResult<AmendmentView> {
        let summary = summary.trim();
        short_text(summary, "summary", 2000, true)?;
        let now = self.now_ms();
        let spec = spec.validated(now)?;
        let mut tx = self.platform().db().begin_write().await?;
        let tender = self.own_tender(&mut tx, who, id).await?;
        if tender.state != "published" || now >= tender.deadline_at {
            return Err(ServiceError::Conflict(
                "a call is amended while published, before its deadline".into(),
            ));
        }
        let before: TenderSpec = parse_doc(&tender.spec)?;
        if spec.deadline_ms < before.deadline_ms {
            return Err(DomainError::invalid(
                "deadline_ms",
                "an amendment can extend the deadline, not bring it forward",
            )
            .into());
        }
        let changes = spec.changes_from(&before);
        if changes.is_empty() {
            return Err(DomainError::invalid("spec", "this amendment changes nothing").into());
        }
        let version = tender.version + 1;
        let text = to_json(&spec)?;
        if !repo::amend(&mut tx, id, version, &text, spec.deadline_ms).await? {
            return Err(ServiceError::Conflict(
                "the call changed meanwhile: read it again".into(),
            ));
        }
        let row = VersionRow {
            tender_id: id.to_owned(),
            version,
            spec: text,
            summary: summary.to_owned(),
            changes: to_json(&changes)?,
            at: now,
        };
        repo::insert_version(&mut tx, &row).await?;
        let mut warnings = Vec::new();
        let min_days = 15;
        if TenderSpec::substantial(&changes) && spec.deadline_ms - now < min_days * 86_400_000 {
            warnings.push(Warning {
                code: "substantial_change_short_deadline".into(),
                message: format!(
                    "{} changed with under {min_days} days left: bidders may need more time to bid again; consider extending the deadline",
                    changes.join(", ")
                ),
            });
        }
        let bidders: Vec<String> = repo::live_bids(&mut tx, id)
            .await?
            .into_iter()
            .map(|b| b.bidder_org_id)
            .collect();
        for bidder in &bidders {
            self.catalogue()
                .enqueue_event(
                    &mut tx,
                    bidder,
                    "tender.amended",
                    "amendment",
                    serde_json::json!({
                        "tender_id": id, "version": version, "changes": changes,
                        "summary": summary, "deadline_ms": spec.deadline_ms,
                        "substantial": TenderSpec::substantial(&changes),
                    }),
                )
                .await?;
        }
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("tender.amend", format!("tender:{id}"))
                    .org(&tender.buyer_org_id)
                    .details(serde_json::json!({
                        "version": version, "changes": changes, "bidders_told": bidders.len(),
                    })),
            )
            .await?;
        if !bidders.is_empty() {
            self.catalogue().wake_deliveries();
        }
        Ok(AmendmentView {
            version: version_view(row)?,
            warnings,
            bidders_told: bidders.len(),
        })
    }

    /// Every version of a published call, for everyone.
    pub async fn tender_versions(&self, id: &str) -> ServiceResult<Vec<VersionView>> {
        let mut conn = self.platform().db().acquire().await?;
        self.published_tender(&mut conn, id).await?;
        repo::versions(&mut conn, id)
            .await?
            .into_iter()
            .map(version_view)
            .collect()
    }
}

fn view(q: QuestionRow, buyer: bool) -> QuestionView {
    QuestionView {
        id: q.id,
        question: q.question,
        asked_at_ms: q.asked_at,
        answer: q.answer,
        answered_at_ms: q.answered_at,
        asker_id: buyer.then_some(q.asker_org_id),
    }
}
