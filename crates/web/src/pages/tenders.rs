//! Calls for tender, as anyone reads them without an account: the list of
//! published calls and a call's page (lots, requirements, weighted criteria,
//! answered questions, versions, awards, open data).

use askama::Template;
use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use nuage_domain::tender::{CriterionKind, Procedure, Requirement};
use nuage_service::catalogue::Catalogue;
use nuage_service::catalogue::tender_changes::{QuestionView, VersionView};
use nuage_service::catalogue::tenders::TenderView;

use super::{ListQuery, next_page_href, read_query};
use crate::error::PageError;
use crate::i18n::{TenderTexts, Texts};
use crate::session::Ctx;
use crate::views::{Chrome, When};

pub struct TenderRow {
    pub href: String,
    pub title: String,
    pub buyer: String,
    pub deadline: When,
    pub status: &'static str,
}

fn status(t: &TenderTexts, v: &TenderView) -> &'static str {
    match v.state.as_str() {
        "cancelled" => t.status_cancelled,
        "opened" => t.status_opened,
        _ if v.closed => t.status_closed,
        _ => t.status_open,
    }
}

#[derive(Template)]
#[template(path = "tenders/list.html")]
pub struct ListPage {
    pub c: Chrome,
    pub rows: Vec<TenderRow>,
    pub next_href: Option<String>,
}

/// A call as one line of a list.
pub fn row(t: &TenderTexts, v: &TenderView) -> TenderRow {
    TenderRow {
        href: format!("/tenders/{}", v.id),
        title: v.spec.title.clone(),
        buyer: v.buyer_name.clone(),
        deadline: When::at(v.spec.deadline_ms),
        status: status(t, v),
    }
}

pub async fn list(
    ctx: Ctx,
    Extension(catalogue): Extension<Catalogue>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let query = read_query(query);
    let page = catalogue.tenders(None, None, &query.page()).await?;
    let t = ctx.t.tn;
    let view = ListPage {
        c: ctx.chrome("tenders"),
        next_href: next_page_href("/tenders", page.next_cursor.as_deref()),
        rows: page.items.iter().map(|v| row(t, v)).collect(),
    };
    ctx.page(StatusCode::OK, &view)
}

/// A lot as shown: its requirements in words.
pub struct LotView {
    pub number: usize,
    pub title: String,
    pub description: String,
    pub profile: String,
    pub requirements: Vec<(&'static str, String)>,
}

pub struct CriterionView {
    pub name: String,
    pub kind: &'static str,
    pub weight: u32,
    pub scale: Option<u32>,
}

pub struct AwardLine {
    pub lot: i64,
    pub amount: String,
    pub signed: Option<When>,
    pub standstill_until: When,
}

pub struct VersionLine {
    pub version: i64,
    pub at: When,
    pub summary: String,
    pub changes: String,
}

#[derive(Template)]
#[template(path = "tenders/show.html")]
pub struct ShowPage {
    pub c: Chrome,
    pub v: TenderView,
    pub status: &'static str,
    pub procedure: &'static str,
    pub deadline: When,
    pub questions_until: Option<When>,
    pub lots: Vec<LotView>,
    pub criteria: Vec<CriterionView>,
    pub questions: Vec<QuestionView>,
    pub versions: Vec<VersionLine>,
    pub awards: Vec<AwardLine>,
}

fn requirement(t: &TenderTexts, r: &Requirement) -> (&'static str, String) {
    match r {
        Requirement::DataLocation { regions } => (t.rule_data_location, regions.join(", ")),
        Requirement::Jurisdiction { allowed } => (t.rule_jurisdiction, allowed.join(", ")),
        Requirement::Certifications { required } => (t.rule_certifications, required.join(", ")),
        Requirement::MinAvailability { percent } => {
            (t.rule_min_availability, format!("{percent} %"))
        }
        Requirement::MinCapacity { gb } => (t.rule_min_capacity, format!("{gb} GB")),
        Requirement::MaxPrice { monthly_eur } => (t.rule_max_price, format!("{monthly_eur} €")),
        Requirement::ReversibilityFormats { required } => {
            (t.rule_reversibility, required.join(", "))
        }
    }
}

pub async fn show(
    ctx: Ctx,
    Extension(catalogue): Extension<Catalogue>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = uuid::Uuid::parse_str(&id)
        .map(|u| u.to_string())
        .map_err(|_| PageError::NotFound)?;
    let v = catalogue.tender(None, &id).await?;
    let questions = catalogue.questions(None, &id, None).await?;
    let versions: Vec<VersionView> = catalogue.tender_versions(&id).await?;
    let texts: &Texts = ctx.t;
    let t = texts.tn;
    let spec = &v.spec;
    let page = ShowPage {
        c: ctx.chrome("tenders"),
        status: status(t, &v),
        procedure: match spec.procedure {
            Procedure::Adapted => t.procedure_adapted,
            Procedure::Open => t.procedure_open,
        },
        deadline: When::at(spec.deadline_ms),
        questions_until: spec.questions_until_ms.map(When::at),
        lots: spec
            .lots
            .iter()
            .enumerate()
            .map(|(i, l)| LotView {
                number: i + 1,
                title: l.title.clone(),
                description: l.description.clone(),
                profile: format!(
                    "{} GB · {} × A · {} × B · {} GB ↑",
                    l.usage_profile.stored_gb,
                    l.usage_profile.class_a_requests,
                    l.usage_profile.class_b_requests,
                    l.usage_profile.egress_gb
                ),
                requirements: l.requirements.iter().map(|r| requirement(t, r)).collect(),
            })
            .collect(),
        criteria: spec
            .criteria
            .iter()
            .map(|c| CriterionView {
                name: c.name.clone(),
                kind: match c.kind {
                    CriterionKind::Price => t.kind_price,
                    CriterionKind::Technical => t.kind_technical,
                },
                weight: c.weight,
                scale: (c.kind == CriterionKind::Technical).then(|| c.scale()),
            })
            .collect(),
        questions,
        versions: versions
            .into_iter()
            .map(|ver| VersionLine {
                version: ver.version,
                at: When::at(ver.at_ms),
                summary: ver.summary,
                changes: ver.changes.join(", "),
            })
            .collect(),
        awards: v
            .awards
            .iter()
            .map(|a| AwardLine {
                lot: a.lot,
                amount: a.amount.clone(),
                signed: a.signed_at_ms.map(When::at),
                standstill_until: When::at(a.standstill_until_ms),
            })
            .collect(),
        v,
    };
    ctx.page(StatusCode::OK, &page)
}
