//! What the buyer and suppliers do from a call's page: publish, ask, answer, withdraw, open, cancel, and a bid sealed in the browser.

use super::*;

// --- actions from the call's page ---------------------------------------------------------

/// Runs one action posted from the call's page: back to it with a notice,
/// or the page again with the error above the forms.
pub(super) async fn act<T>(
    ctx: &Ctx,
    procurement: &Procurement,
    id: &str,
    notice: &str,
    outcome: Result<T, ServiceError>,
) -> Result<Response, PageError> {
    match outcome {
        Ok(_) => Ok(back_to(id, notice)),
        Err(e) => {
            let error = FormError::from_service(ctx.t, e)?;
            crate::pages::tenders::show_page(ctx, procurement, id, error.into()).await
        }
    }
}

pub async fn publish(
    Extension(procurement): Extension<Procurement>,
    Path(id): Path<String>,
    Posted { ctx, form: f, .. }: Posted<Pairs>,
) -> Result<Response, PageError> {
    let id = tender_id(&id)?;
    let session = ctx.user()?;
    let shares = match (field(&f, "threshold"), field(&f, "total")) {
        (k, n) if k.is_empty() && n.is_empty() => Ok(None),
        (k, n) => number::<u8>(&k, "shares")
            .and_then(|threshold| Ok((threshold, number::<u8>(&n, "shares")?)))
            .map(|(threshold, total)| Some(SharesPolicy { threshold, total })),
    };
    let outcome = match shares {
        Ok(shares) => {
            procurement
                .publish_tender(
                    &session.principal(),
                    &ctx.meta,
                    &id,
                    &field(&f, "recipient"),
                    shares,
                )
                .await
        }
        Err(e) => Err(e.into()),
    };
    act(&ctx, &procurement, &id, "tender_published", outcome).await
}

pub async fn ask(
    Extension(procurement): Extension<Procurement>,
    Path(id): Path<String>,
    Posted { ctx, form: f, .. }: Posted<Pairs>,
) -> Result<Response, PageError> {
    let id = tender_id(&id)?;
    let session = ctx.user()?;
    let org = session_org(session)?;
    let outcome = procurement
        .ask_question(
            &session.principal(),
            &ctx.meta,
            &id,
            org,
            &field(&f, "question"),
        )
        .await;
    act(&ctx, &procurement, &id, "question_sent", outcome).await
}

pub async fn answer(
    Extension(procurement): Extension<Procurement>,
    Path((id, question)): Path<(String, String)>,
    Posted { ctx, form: f, .. }: Posted<Pairs>,
) -> Result<Response, PageError> {
    let id = tender_id(&id)?;
    let session = ctx.user()?;
    let outcome = procurement
        .answer_question(
            &session.principal(),
            &ctx.meta,
            &id,
            &question,
            &field(&f, "answer"),
        )
        .await;
    act(&ctx, &procurement, &id, "answer_published", outcome).await
}

pub async fn withdraw(
    Extension(procurement): Extension<Procurement>,
    Path(id): Path<String>,
    Posted { ctx, form: _, .. }: Posted<Pairs>,
) -> Result<Response, PageError> {
    let id = tender_id(&id)?;
    let session = ctx.user()?;
    let org = session_org(session)?;
    let outcome = procurement
        .withdraw_bid(&session.principal(), &ctx.meta, &id, org)
        .await;
    act(&ctx, &procurement, &id, "bid_withdrawn", outcome).await
}

pub async fn open(
    Extension(procurement): Extension<Procurement>,
    Path(id): Path<String>,
    Posted { ctx, form: f, .. }: Posted<Pairs>,
) -> Result<Response, PageError> {
    let id = tender_id(&id)?;
    let session = ctx.user()?;
    let shares: Vec<String> = field(&f, "shares")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let secret = if shares.is_empty() {
        // A key file as written: its comment lines are left out.
        let identity = field(&f, "identity")
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("AGE-SECRET-KEY-"))
            .unwrap_or_default()
            .to_owned();
        OpeningSecret::Identity(identity)
    } else {
        OpeningSecret::Shares(shares)
    };
    let outcome = procurement
        .open_tender(&session.principal(), &ctx.meta, &id, &secret)
        .await;
    act(&ctx, &procurement, &id, "bids_opened", outcome).await
}

pub async fn cancel(
    Extension(procurement): Extension<Procurement>,
    Path(id): Path<String>,
    Posted { ctx, form: f, .. }: Posted<Pairs>,
) -> Result<Response, PageError> {
    let id = tender_id(&id)?;
    let session = ctx.user()?;
    let outcome = procurement
        .cancel_tender(&session.principal(), &ctx.meta, &id, &field(&f, "reason"))
        .await;
    act(&ctx, &procurement, &id, "tender_cancelled", outcome).await
}

/// Receives an envelope sealed in the browser (`static/tenders.js`) and
/// answers its signed receipt.
pub async fn submit_bid(
    ctx: Ctx,
    Extension(procurement): Extension<Procurement>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(id) = tender_id(&id) else {
        return crate::script::problem(StatusCode::NOT_FOUND, ctx.t.err_not_found, None);
    };
    let session = match crate::script::session(&ctx, &headers) {
        Ok(s) => s,
        Err(response) => return *response,
    };
    let org = match current_org(session) {
        Ok(Some((org, _))) => org,
        _ => return crate::script::problem(StatusCode::CONFLICT, ctx.t.td.err_no_org, None),
    };
    let outcome = procurement
        .submit_bid(&session.principal(), &ctx.meta, &id, org, &body)
        .await;
    crate::script::answer(&ctx, outcome)
}
