//! A lot's evaluation: the opened bids, marks, ranking, award and signature.

use super::*;

// --- a lot's evaluation -------------------------------------------------------------------

pub struct TechnicalCriterion {
    pub index: usize,
    pub name: String,
    pub scale: u32,
}

pub struct MarkInput {
    pub index: usize,
    pub name: String,
    pub scale: u32,
    pub value: String,
}

pub struct CandidateRow {
    pub bid_id: String,
    pub bidder: String,
    pub offer_id: String,
    pub monthly_price: String,
    pub eligible: bool,
    pub rules: Vec<(bool, String, String)>,
    pub excluded: Option<String>,
    pub answers: Vec<(String, String)>,
    pub marks: Vec<MarkInput>,
}

pub struct RankRow {
    pub rank: u32,
    pub bidder: String,
    pub price: String,
    pub points: String,
    pub total: String,
}

#[derive(Template)]
#[template(path = "tenders/lot.html")]
pub struct LotPage {
    pub c: Chrome,
    pub csrf: String,
    pub tender_id: String,
    pub tender_title: String,
    pub lot: i64,
    pub lot_title: String,
    pub candidates: Vec<CandidateRow>,
    pub incomplete: Option<String>,
    pub ranking: Vec<RankRow>,
    pub awarded: Option<AwardState>,
    /// Marks can still change (the lot is not awarded).
    pub open_for_marks: bool,
    pub error: FormAlert,
}

pub struct AwardState {
    pub amount: String,
    pub standstill_until: When,
    pub signed: Option<When>,
    pub subscription_id: Option<String>,
}

pub(super) fn lot_view(
    ctx: &Ctx,
    session: &Session,
    v: &TenderView,
    lot: i64,
    eval: LotEvaluation,
    error: FormAlert,
) -> Result<Response, PageError> {
    let Some(spec_lot) = usize::try_from(lot - 1)
        .ok()
        .and_then(|i| v.spec.lots.get(i))
    else {
        return Err(PageError::NotFound);
    };
    let technical: Vec<TechnicalCriterion> = v
        .spec
        .criteria
        .iter()
        .enumerate()
        .filter(|(_, c)| c.kind == CriterionKind::Technical)
        .map(|(index, c)| TechnicalCriterion {
            index,
            name: c.name.clone(),
            scale: c.scale(),
        })
        .collect();
    let names: std::collections::BTreeMap<&str, &str> = eval
        .candidates
        .iter()
        .map(|c| (c.bid_id.as_str(), c.bidder_name.as_str()))
        .collect();
    let award = v.awards.iter().find(|a| a.lot == lot);
    let page = LotPage {
        c: ctx.chrome("tenders"),
        csrf: session.csrf_token.clone(),
        tender_id: v.id.clone(),
        tender_title: v.spec.title.clone(),
        lot,
        lot_title: spec_lot.title.clone(),
        ranking: eval
            .ranking
            .iter()
            .map(|s| RankRow {
                rank: s.rank,
                bidder: names.get(s.bid_id.as_str()).copied().unwrap_or("").into(),
                price: s.price.round_dp(2).to_string(),
                points: s
                    .points
                    .iter()
                    .map(|(k, p)| format!("{k} {}", p.round_dp(2)))
                    .collect::<Vec<_>>()
                    .join(" · "),
                total: s.total.round_dp(2).to_string(),
            })
            .collect(),
        candidates: eval
            .candidates
            .into_iter()
            .map(|c| CandidateRow {
                marks: technical
                    .iter()
                    .map(|t| MarkInput {
                        index: t.index,
                        name: t.name.clone(),
                        scale: t.scale,
                        value: c
                            .marks
                            .get(&t.name)
                            .map(Decimal::to_string)
                            .unwrap_or_default(),
                    })
                    .collect(),
                rules: c
                    .eligibility
                    .into_iter()
                    .map(|r| (r.passed, r.rule, r.explanation))
                    .collect(),
                answers: c.answers.into_iter().collect(),
                bid_id: c.bid_id,
                bidder: c.bidder_name,
                offer_id: c.offer_id,
                monthly_price: c.monthly_price,
                eligible: c.eligible,
                excluded: c.excluded_reason,
            })
            .collect(),
        incomplete: eval.incomplete,
        open_for_marks: award.is_none(),
        awarded: award.map(|a| AwardState {
            amount: a.amount.clone(),
            standstill_until: When::at(a.standstill_until_ms),
            signed: a.signed_at_ms.map(When::at),
            subscription_id: a.subscription_id.clone(),
        }),
        error,
    };
    let status = page.error.status_or(StatusCode::OK);
    ctx.page(status, &page)
}

pub(super) async fn lot_page(
    ctx: &Ctx,
    procurement: &Procurement,
    id: &str,
    lot: i64,
    error: FormAlert,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let who = session.principal();
    let v = procurement.tender(Some(&who), id).await?;
    let eval = procurement.evaluation(&who, id, lot).await?;
    lot_view(ctx, session, &v, lot, eval, error)
}

pub async fn lot(
    ctx: Ctx,
    Extension(procurement): Extension<Procurement>,
    Path((id, lot)): Path<(String, i64)>,
) -> Result<Response, PageError> {
    let id = tender_id(&id)?;
    lot_page(&ctx, &procurement, &id, lot, FormAlert::none()).await
}

/// Runs one action posted from a lot's page.
pub(super) async fn act_on_lot<T>(
    ctx: &Ctx,
    procurement: &Procurement,
    id: &str,
    lot: i64,
    notice: &str,
    outcome: Result<T, ServiceError>,
) -> Result<Response, PageError> {
    match outcome {
        Ok(_) => {
            Ok(Redirect::to(&format!("/tenders/{id}/lots/{lot}?notice={notice}")).into_response())
        }
        Err(e) => {
            let error = FormError::from_service(ctx.t, e)?;
            lot_page(ctx, procurement, id, lot, error.into()).await
        }
    }
}

pub async fn mark(
    Extension(procurement): Extension<Procurement>,
    Path((id, lot, bid)): Path<(String, i64, String)>,
    Posted { ctx, form: f, .. }: Posted<Pairs>,
) -> Result<Response, PageError> {
    let id = tender_id(&id)?;
    let session = ctx.user()?;
    let who = session.principal();
    let v = procurement.tender(Some(&who), &id).await?;
    let mut marks = std::collections::BTreeMap::new();
    let mut outcome = Ok(());
    for (index, c) in v.spec.criteria.iter().enumerate() {
        let value = field(&f, &format!("mark{index}"));
        if c.kind != CriterionKind::Technical || value.is_empty() {
            continue;
        }
        match decimal(&value, "marks") {
            Ok(m) => {
                marks.insert(c.name.clone(), m);
            }
            Err(e) => outcome = Err(ServiceError::from(e)),
        }
    }
    let exclude = Some(field(&f, "exclude")).filter(|r| !r.is_empty());
    let outcome = match outcome {
        Ok(()) => procurement
            .mark_bid(&who, &ctx.meta, &id, lot, &bid, Marking { marks, exclude })
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    act_on_lot(&ctx, &procurement, &id, lot, "marks_saved", outcome).await
}

pub async fn award(
    Extension(procurement): Extension<Procurement>,
    Path((id, lot)): Path<(String, i64)>,
    Posted { ctx, .. }: Posted<Pairs>,
) -> Result<Response, PageError> {
    decide(&ctx, &procurement, &id, lot, false).await
}

pub async fn sign(
    Extension(procurement): Extension<Procurement>,
    Path((id, lot)): Path<(String, i64)>,
    Posted { ctx, .. }: Posted<Pairs>,
) -> Result<Response, PageError> {
    decide(&ctx, &procurement, &id, lot, true).await
}

/// Awards a lot to the first of its ranking, or signs its contract.
pub(super) async fn decide(
    ctx: &Ctx,
    procurement: &Procurement,
    id: &str,
    lot: i64,
    sign: bool,
) -> Result<Response, PageError> {
    let id = tender_id(id)?;
    let session = ctx.user()?;
    let who = session.principal();
    let (outcome, notice) = if sign {
        (
            procurement.sign_contract(&who, &ctx.meta, &id, lot).await,
            "contract_signed",
        )
    } else {
        (
            procurement.award_lot(&who, &ctx.meta, &id, lot).await,
            "lot_awarded",
        )
    };
    act_on_lot(ctx, procurement, &id, lot, notice, outcome).await
}
