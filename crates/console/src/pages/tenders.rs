//! Calls for tender, as anyone reads them without an account: the list of
//! published calls and a call's page (lots, requirements, weighted criteria,
//! answered questions, versions, awards, open data).

use askama::Template;
use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use nuage_domain::catalogue::OfferSheet;
use nuage_domain::ids::OrgId;
use nuage_domain::org::Permission;
use nuage_domain::tender::{CriterionKind, Procedure, Requirement, SharesPolicy};
use nuage_market::Sheet;
use nuage_procurement::Procurement;
use nuage_procurement::tender_changes::{QuestionView, VersionView};
use nuage_procurement::tenders::TenderView;
use nuage_service::Principal;
use nuage_service::auth::Session;

use super::{ListQuery, current_org, next_page_href, read_query};
use crate::error::{FormAlert, PageError};
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
        "draft" => t.status_draft,
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
    /// The member may run its organisation's calls: the link to draft one.
    pub can_draft: bool,
    /// Its organisation's own calls, drafts included.
    pub own: Vec<TenderRow>,
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
    Extension(procurement): Extension<Procurement>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let query = read_query(query);
    let page = procurement.tenders(None, None, &query.page()).await?;
    let t = ctx.t.tn;
    let mut own = Vec::new();
    let mut can_draft = false;
    if let Some(session) = ctx.session.as_ref().filter(|s| !s.second_factor_pending)
        && let Some((org, m)) = current_org(session)?
        && m.role.may(Permission::RunCalls)
    {
        can_draft = true;
        let first = nuage_service::PageRequest {
            cursor: None,
            limit: Some(100),
        };
        own = procurement
            .tenders(Some(&session.principal()), Some(org), &first)
            .await?
            .items
            .iter()
            .map(|v| row(t, v))
            .collect();
    }
    let view = ListPage {
        c: ctx.chrome("tenders"),
        next_href: next_page_href("/tenders", page.next_cursor.as_deref()),
        rows: page.items.iter().map(|v| row(t, v)).collect(),
        can_draft,
        own,
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
    pub buyer: Option<BuyerDesk>,
    pub supplier: Option<SupplierDesk>,
    pub documents: Vec<DocumentLine>,
    pub error: FormAlert,
}

/// A document of the call, with its download link.
pub struct DocumentLine {
    pub href: String,
    pub remove_href: String,
    pub name: String,
    pub size: i64,
    pub sha256: String,
}

/// The buyer's part of a call's page: what can be done in its state.
pub struct BuyerDesk {
    pub csrf: String,
    pub draft: bool,
    pub amendable: bool,
    pub to_open: bool,
    pub opened: bool,
    pub shares: Option<SharesPolicy>,
    pub cancellable: bool,
}

pub struct EnvelopeLine {
    pub bid_id: String,
    pub sha256: String,
    pub size: u64,
    pub received: When,
    pub status: &'static str,
}

/// A bidder's result on an awarded lot.
pub struct ResultLine {
    pub lot: i64,
    pub won: bool,
    pub score: Option<String>,
    pub rank: Option<u32>,
    pub winner_score: String,
}

/// A supplier's part: its questions, its envelopes, its results, the
/// sealing form.
pub struct SupplierDesk {
    pub csrf: String,
    pub org_name: String,
    /// An owner or admin, who may bid for the organisation.
    pub manages: bool,
    pub can_ask: bool,
    pub can_bid: bool,
    /// It has an envelope that counts.
    pub live: bool,
    pub envelopes: Vec<EnvelopeLine>,
    /// Its results on the awarded lots it bid for.
    pub results: Vec<ResultLine>,
    /// It has a published offer for some lot.
    pub has_offers: bool,
    /// Per lot, its published offers of the lot's kind, (id, name).
    pub offers: Vec<Vec<(String, String)>>,
    /// The technical criteria a bid answers.
    pub technical: Vec<String>,
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
    Extension(procurement): Extension<Procurement>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = uuid::Uuid::parse_str(&id)
        .map(|u| u.to_string())
        .map_err(|_| PageError::NotFound)?;
    show_page(&ctx, &procurement, &id, FormAlert::none()).await
}

/// What the signed-in member sees of a call: its buyer's part, or a
/// supplier's.
enum Viewer {
    Visitor,
    Buyer(Principal),
    Supplier(Principal, OrgId, String, bool),
}

fn viewer(ctx: &Ctx, v: &TenderView) -> Result<Viewer, PageError> {
    let Some(session) = ctx.session.as_ref().filter(|s| !s.second_factor_pending) else {
        return Ok(Viewer::Visitor);
    };
    let who = session.principal();
    Ok(match current_org(session)? {
        Some((_, m)) if m.org_id == v.buyer_id => {
            if m.role.may(Permission::RunCalls) {
                Viewer::Buyer(who)
            } else {
                Viewer::Visitor
            }
        }
        Some((org, m)) => Viewer::Supplier(who, org, m.org_name.clone(), m.role.manages_org()),
        None => Viewer::Visitor,
    })
}

/// The call's page, with the signed-in member's part and, after a failed
/// action, its error.
pub async fn show_page(
    ctx: &Ctx,
    procurement: &Procurement,
    id: &str,
    error: FormAlert,
) -> Result<Response, PageError> {
    let principal = ctx
        .session
        .as_ref()
        .filter(|s| !s.second_factor_pending)
        .map(Session::principal);
    let v = procurement.tender(principal.as_ref(), id).await?;
    let viewer = viewer(ctx, &v)?;
    let draft = v.state == "draft";
    let csrf = ctx
        .session
        .as_ref()
        .map(|s| s.csrf_token.clone())
        .unwrap_or_default();
    let mut buyer = None;
    let mut supplier = None;
    let questions = match (&viewer, draft) {
        (_, true) => Vec::new(),
        (Viewer::Buyer(who), _) => procurement.questions(Some(who), id, None).await?,
        (Viewer::Supplier(who, org, ..), _) => {
            procurement.questions(Some(who), id, Some(*org)).await?
        }
        (Viewer::Visitor, _) => procurement.questions(None, id, None).await?,
    };
    let now = procurement.platform().now_ms();
    match &viewer {
        Viewer::Buyer(_) => {
            let all_signed = !v.awards.is_empty()
                && v.awards.len() == v.spec.lots.len()
                && v.awards.iter().all(|a| a.signed_at_ms.is_some());
            buyer = Some(BuyerDesk {
                csrf: csrf.clone(),
                draft,
                amendable: v.state == "published" && !v.closed,
                to_open: v.state == "published" && v.closed,
                opened: v.state == "opened",
                shares: v.shares,
                cancellable: v.state != "cancelled" && !all_signed,
            });
        }
        Viewer::Supplier(who, org, org_name, manages) if !draft => {
            let envelopes = if *manages {
                procurement.envelopes(who, id, *org).await?
            } else {
                Vec::new()
            };
            let results = procurement.bid_results(who, id, *org).await?;
            let published: Vec<(String, OfferSheet)> =
                if *manages && v.state == "published" && !v.closed {
                    procurement
                        .catalogue()
                        .sheets_of::<OfferSheet>(who, Sheet::Offer, *org)
                        .await?
                        .into_iter()
                        .filter_map(|o| o.published.map(|p| (o.id, p)))
                        .collect()
                } else {
                    Vec::new()
                };
            // Each lot is answered with an offer of its kind.
            let offers: Vec<Vec<(String, String)>> = v
                .spec
                .lots
                .iter()
                .map(|lot| {
                    published
                        .iter()
                        .filter(|(_, o)| o.category == lot.category)
                        .map(|(id, o)| (id.clone(), o.name.clone()))
                        .collect()
                })
                .collect();
            let t = ctx.t.td;
            supplier = Some(SupplierDesk {
                csrf: csrf.clone(),
                org_name: org_name.clone(),
                manages: *manages,
                can_ask: v.state == "published" && now < v.spec.questions_close(),
                can_bid: v.state == "published" && !v.closed,
                live: envelopes.iter().any(|e| e.status == "live"),
                envelopes: envelopes
                    .into_iter()
                    .map(|e| EnvelopeLine {
                        status: match e.status.as_str() {
                            "live" => t.envelope_live,
                            "replaced" => t.envelope_replaced,
                            _ => t.envelope_withdrawn,
                        },
                        received: When::at(e.receipt.receipt.received_at_ms),
                        bid_id: e.receipt.receipt.bid_id,
                        sha256: e.receipt.receipt.sha256,
                        size: e.receipt.receipt.size,
                    })
                    .collect(),
                results: results
                    .into_iter()
                    .map(|r| ResultLine {
                        lot: r.lot,
                        won: r.won,
                        score: r.your_score,
                        rank: r.your_rank,
                        winner_score: r.winner_score,
                    })
                    .collect(),
                has_offers: offers.iter().any(|o| !o.is_empty()),
                offers,
                technical: v
                    .spec
                    .criteria
                    .iter()
                    .filter(|c| c.kind == CriterionKind::Technical)
                    .map(|c| c.name.clone())
                    .collect(),
            });
        }
        _ => {}
    }
    let documents = procurement
        .documents(principal.as_ref(), id)
        .await?
        .into_iter()
        .map(|d| DocumentLine {
            href: format!("/tenders/{id}/documents/{}", d.id),
            remove_href: format!("/tenders/{id}/documents/{}/remove", d.id),
            name: d.name,
            size: d.size,
            sha256: d.sha256,
        })
        .collect();
    let versions: Vec<VersionView> = if draft {
        Vec::new()
    } else {
        procurement.tender_versions(id).await?
    };
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
        buyer,
        supplier,
        documents,
        error,
        v,
    };
    let status = page.error.status_or(StatusCode::OK);
    ctx.page(status, &page)
}
