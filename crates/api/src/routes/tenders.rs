//! Calls for tender: drafted and published by a public buyer, read by
//! anyone; sealed bids uploaded as age ciphertext with a signed receipt;
//! opening, marking, award and signature by the buyer.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use nuage_domain::tender::{SharesPolicy, SignedReceipt, TenderSpec};
use nuage_procurement::Procurement;
use nuage_procurement::tender_changes::{AmendmentView, QuestionView, VersionView};
use nuage_procurement::tender_documents::DocumentView;
use nuage_procurement::tenders::{
    AwardView, EnvelopeView, LotEvaluation, LotResult, Marking, OpeningReport, OpeningSecret,
    TenderView,
};
use nuage_service::Page;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::catalogue::uuid_param;
use super::org_id;
use crate::extract::{Caller, JsonBody, Meta, PageParams, Params, PathParam};
use crate::problem::{ApiError, Problem};

type Cat = Extension<Procurement>;

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/tenders", tag = "tenders", params(("org_id" = String, Path)),
    request_body = TenderSpec,
    responses((status = 201, body = TenderView, description = "The draft"), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn create(
    Extension(procurement): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    body: JsonBody<TenderSpec>,
) -> Result<Response, ApiError> {
    let view = procurement
        .create_tender(&who, &meta, org_id(&id)?, body.value)
        .await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/tenders", tag = "tenders", params(("org_id" = String, Path), PageParams),
    responses((status = 200, body = Page<TenderView>, description = "The organisation's calls, drafts included"), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn of_buyer(
    Extension(procurement): Cat,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
    Params(page): Params<PageParams>,
) -> Result<Json<Page<TenderView>>, ApiError> {
    Ok(Json(
        procurement
            .tenders(Some(&who), Some(org_id(&id)?), &page.into_request())
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/tenders", tag = "tenders", params(PageParams),
    responses((status = 200, body = Page<TenderView>, description = "Published calls, no account needed"), (status = "4XX", body = Problem)))]
pub async fn list(
    Extension(procurement): Cat,
    Params(page): Params<PageParams>,
) -> Result<Json<Page<TenderView>>, ApiError> {
    Ok(Json(
        procurement
            .tenders(None, None, &page.into_request())
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/tenders/{tender_id}", tag = "tenders", params(("tender_id" = String, Path)),
    responses((status = 200, body = TenderView, description = "A published call (no account needed), or a draft for its buyer"), (status = "4XX", body = Problem)))]
pub async fn get(
    Extension(procurement): Cat,
    who: Option<Caller>,
    PathParam(id): PathParam<String>,
) -> Result<Json<TenderView>, ApiError> {
    let who = who.map(|Caller(p)| p);
    Ok(Json(
        procurement.tender(who.as_ref(), &uuid_param(&id)?).await?,
    ))
}

#[utoipa::path(put, path = "/api/v1/tenders/{tender_id}", tag = "tenders", params(("tender_id" = String, Path)),
    request_body = TenderSpec,
    responses((status = 200, body = TenderView, description = "The draft, changed"), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn update(
    Extension(procurement): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    body: JsonBody<TenderSpec>,
) -> Result<Json<TenderView>, ApiError> {
    Ok(Json(
        procurement
            .update_tender(&who, &meta, &uuid_param(&id)?, body.value)
            .await?,
    ))
}

/// The public half of the call's opening key.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Publish {
    /// An age X25519 recipient, `age1…`, from `nuage tender keygen`.
    pub recipient: String,
    /// When the private half was split among the committee
    /// (`nuage tender keygen --shares N --threshold K`).
    #[serde(default)]
    pub shares: Option<SharesPolicy>,
}

#[utoipa::path(post, path = "/api/v1/tenders/{tender_id}/publish", tag = "tenders", params(("tender_id" = String, Path)),
    request_body = Publish,
    responses((status = 200, body = TenderView, description = "Published; `warnings` says if the deadline is shorter than the procedure's rule"), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn publish(
    Extension(procurement): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    body: JsonBody<Publish>,
) -> Result<Json<TenderView>, ApiError> {
    Ok(Json(
        procurement
            .publish_tender(
                &who,
                &meta,
                &uuid_param(&id)?,
                &body.value.recipient,
                body.value.shares,
            )
            .await?,
    ))
}

/// Which organisation bids.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Bidder {
    pub org_id: String,
}

#[utoipa::path(post, path = "/api/v1/tenders/{tender_id}/bids", tag = "tenders", params(("tender_id" = String, Path), Bidder),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The bid (docs/tender-bid.schema.json) sealed with age to the call's recipient"),
    responses((status = 201, body = SignedReceipt, description = "The receipt, signed by the platform"), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn submit(
    Extension(procurement): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    Params(bidder): Params<Bidder>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let receipt = procurement
        .submit_bid(
            &who,
            &meta,
            &uuid_param(&id)?,
            org_id(&bidder.org_id)?,
            &body,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(receipt)).into_response())
}

#[utoipa::path(get, path = "/api/v1/tenders/{tender_id}/bids", tag = "tenders", params(("tender_id" = String, Path), Bidder),
    responses((status = 200, body = Vec<EnvelopeView>, description = "The bidder's own envelopes, latest first"), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn envelopes(
    Extension(procurement): Cat,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
    Params(bidder): Params<Bidder>,
) -> Result<Json<Vec<EnvelopeView>>, ApiError> {
    Ok(Json(
        procurement
            .envelopes(&who, &uuid_param(&id)?, org_id(&bidder.org_id)?)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/tenders/{tender_id}/results", tag = "tenders", params(("tender_id" = String, Path), Bidder),
    responses((status = 200, body = Vec<LotResult>, description = "The bidder's result for each awarded lot it bid for: its score and rank, the winner's score"), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn results(
    Extension(procurement): Cat,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
    Params(bidder): Params<Bidder>,
) -> Result<Json<Vec<LotResult>>, ApiError> {
    Ok(Json(
        procurement
            .bid_results(&who, &uuid_param(&id)?, org_id(&bidder.org_id)?)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/tenders/{tender_id}/bids", tag = "tenders", params(("tender_id" = String, Path), Bidder),
    responses((status = 204, description = "Withdrawn"), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn withdraw(
    Extension(procurement): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    Params(bidder): Params<Bidder>,
) -> Result<StatusCode, ApiError> {
    procurement
        .withdraw_bid(&who, &meta, &uuid_param(&id)?, org_id(&bidder.org_id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The call's private key, or enough of its shares, brought by the
/// committee after the deadline: `{"identity": "AGE-SECRET-KEY-1…"}` or
/// `{"shares": ["NUAGE-SHARE-1-…", …]}`.
pub type Open = OpeningSecret;

#[utoipa::path(post, path = "/api/v1/tenders/{tender_id}/open", tag = "tenders", params(("tender_id" = String, Path)),
    request_body = OpeningSecret,
    responses((status = 200, body = OpeningReport), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn open(
    Extension(procurement): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    body: JsonBody<Open>,
) -> Result<Json<OpeningReport>, ApiError> {
    Ok(Json(
        procurement
            .open_tender(&who, &meta, &uuid_param(&id)?, &body.value)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/tenders/{tender_id}/lots/{lot}/evaluation", tag = "tenders",
    params(("tender_id" = String, Path), ("lot" = i64, Path)),
    responses((status = 200, body = LotEvaluation), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn evaluation(
    Extension(procurement): Cat,
    Caller(who): Caller,
    PathParam((id, lot)): PathParam<(String, i64)>,
) -> Result<Json<LotEvaluation>, ApiError> {
    Ok(Json(
        procurement.evaluation(&who, &uuid_param(&id)?, lot).await?,
    ))
}

#[utoipa::path(put, path = "/api/v1/tenders/{tender_id}/lots/{lot}/bids/{bid_id}/marks", tag = "tenders",
    params(("tender_id" = String, Path), ("lot" = i64, Path), ("bid_id" = String, Path)),
    request_body = Marking,
    responses((status = 200, body = LotEvaluation), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn mark(
    Extension(procurement): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam((id, lot, bid)): PathParam<(String, i64, String)>,
    body: JsonBody<Marking>,
) -> Result<Json<LotEvaluation>, ApiError> {
    Ok(Json(
        procurement
            .mark_bid(
                &who,
                &meta,
                &uuid_param(&id)?,
                lot,
                &uuid_param(&bid)?,
                body.value,
            )
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/tenders/{tender_id}/lots/{lot}/award", tag = "tenders",
    params(("tender_id" = String, Path), ("lot" = i64, Path)),
    responses((status = 200, body = AwardView), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn award(
    Extension(procurement): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam((id, lot)): PathParam<(String, i64)>,
) -> Result<Json<AwardView>, ApiError> {
    Ok(Json(
        procurement
            .award_lot(&who, &meta, &uuid_param(&id)?, lot)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/tenders/{tender_id}/lots/{lot}/sign", tag = "tenders",
    params(("tender_id" = String, Path), ("lot" = i64, Path)),
    responses((status = 200, body = AwardView, description = "Signed; the winning offer is ordered"), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn sign(
    Extension(procurement): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam((id, lot)): PathParam<(String, i64)>,
) -> Result<Json<AwardView>, ApiError> {
    Ok(Json(
        procurement
            .sign_contract(&who, &meta, &uuid_param(&id)?, lot)
            .await?,
    ))
}

/// Why the call has no follow-up.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Cancel {
    pub reason: String,
}

#[utoipa::path(post, path = "/api/v1/tenders/{tender_id}/cancel", tag = "tenders", params(("tender_id" = String, Path)),
    request_body = Cancel,
    responses((status = 200, body = TenderView, description = "Declared without follow-up"), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn cancel(
    Extension(procurement): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    body: JsonBody<Cancel>,
) -> Result<Json<TenderView>, ApiError> {
    Ok(Json(
        procurement
            .cancel_tender(&who, &meta, &uuid_param(&id)?, &body.value.reason)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/open-data/ocds.json", tag = "tenders",
    responses((status = 200, body = Object, description = "Every published call as an OCDS 1.1.5 release package (Licence Ouverte 2.0), no account needed")))]
pub async fn ocds_all(Extension(procurement): Cat) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(procurement.ocds_package(None).await?))
}

#[utoipa::path(get, path = "/api/v1/open-data/tenders/{tender_id}/ocds.json", tag = "tenders", params(("tender_id" = String, Path)),
    responses((status = 200, body = Object, description = "One call's OCDS 1.1.5 release package"), (status = "4XX", body = Problem)))]
pub async fn ocds_one(
    Extension(procurement): Cat,
    PathParam(id): PathParam<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(
        procurement.ocds_package(Some(&uuid_param(&id)?)).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/open-data/decp.json", tag = "tenders",
    responses((status = 200, body = Object, description = "Every signed contract as DECP 2.0.3 (`marches.marche`), no account needed")))]
pub async fn decp(Extension(procurement): Cat) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(procurement.decp().await?))
}

/// Whose questions, besides the answered ones.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Asker {
    pub org_id: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/tenders/{tender_id}/questions", tag = "tenders", params(("tender_id" = String, Path), Asker),
    responses((status = 200, body = Vec<QuestionView>, description = "Answered questions for everyone (never the asker); with `org_id`, that organisation's own too; all of them for the buyer"), (status = "4XX", body = Problem)))]
pub async fn questions(
    Extension(procurement): Cat,
    who: Option<Caller>,
    PathParam(id): PathParam<String>,
    Params(asker): Params<Asker>,
) -> Result<Json<Vec<QuestionView>>, ApiError> {
    let who = who.map(|Caller(p)| p);
    let asker = asker.org_id.as_deref().map(org_id).transpose()?;
    Ok(Json(
        procurement
            .questions(who.as_ref(), &uuid_param(&id)?, asker)
            .await?,
    ))
}

/// A supplier's question.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Ask {
    pub question: String,
}

#[utoipa::path(post, path = "/api/v1/tenders/{tender_id}/questions", tag = "tenders", params(("tender_id" = String, Path), Bidder),
    request_body = Ask,
    responses((status = 201, body = QuestionView, description = "Asked privately: only the buyer reads it until it is answered"), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn ask(
    Extension(procurement): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    Params(asker): Params<Bidder>,
    body: JsonBody<Ask>,
) -> Result<Response, ApiError> {
    let q = procurement
        .ask_question(
            &who,
            &meta,
            &uuid_param(&id)?,
            org_id(&asker.org_id)?,
            &body.value.question,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(q)).into_response())
}

/// The buyer's answer.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub answer: String,
}

#[utoipa::path(post, path = "/api/v1/tenders/{tender_id}/questions/{question_id}/answer", tag = "tenders",
    params(("tender_id" = String, Path), ("question_id" = String, Path)),
    request_body = Answer,
    responses((status = 200, body = QuestionView, description = "Answered, for everyone to read"), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn answer(
    Extension(procurement): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam((id, question)): PathParam<(String, String)>,
    body: JsonBody<Answer>,
) -> Result<Json<QuestionView>, ApiError> {
    Ok(Json(
        procurement
            .answer_question(
                &who,
                &meta,
                &uuid_param(&id)?,
                &uuid_param(&question)?,
                &body.value.answer,
            )
            .await?,
    ))
}

/// An amendment: the whole call as it becomes, and why.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Amend {
    pub spec: TenderSpec,
    pub summary: String,
}

#[utoipa::path(post, path = "/api/v1/tenders/{tender_id}/amendments", tag = "tenders", params(("tender_id" = String, Path)),
    request_body = Amend,
    responses((status = 201, body = AmendmentView), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn amend(
    Extension(procurement): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    body: JsonBody<Amend>,
) -> Result<Response, ApiError> {
    let Amend { spec, summary } = body.value;
    let a = procurement
        .amend_tender(&who, &meta, &uuid_param(&id)?, spec, &summary)
        .await?;
    Ok((StatusCode::CREATED, Json(a)).into_response())
}

#[utoipa::path(get, path = "/api/v1/tenders/{tender_id}/versions", tag = "tenders", params(("tender_id" = String, Path)),
    responses((status = 200, body = Vec<VersionView>, description = "Publication and every amendment, with what each changed"), (status = "4XX", body = Problem)))]
pub async fn versions(
    Extension(procurement): Cat,
    PathParam(id): PathParam<String>,
) -> Result<Json<Vec<VersionView>>, ApiError> {
    Ok(Json(procurement.tender_versions(&uuid_param(&id)?).await?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/matching-tenders", tag = "tenders", params(("org_id" = String, Path)),
    responses((status = 200, body = Vec<TenderView>, description = "Calls open for bids whose lots one of the organisation's published offers meets (the price apart)"), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn matching(
    Extension(procurement): Cat,
    Caller(who): Caller,
    PathParam(id): PathParam<String>,
) -> Result<Json<Vec<TenderView>>, ApiError> {
    Ok(Json(
        procurement.matching_tenders(&who, org_id(&id)?).await?,
    ))
}

/// The name of a document being attached.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DocumentName {
    /// The file name, without a path.
    pub name: String,
}

#[utoipa::path(post, path = "/api/v1/tenders/{tender_id}/documents", tag = "tenders", params(("tender_id" = String, Path), DocumentName),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file; its Content-Type is kept"),
    responses((status = 201, body = DocumentView, description = "Attached to the draft, sealed in the platform's storage"), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn add_document(
    Extension(procurement): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam(id): PathParam<String>,
    Params(document): Params<DocumentName>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let view = procurement
        .add_document(
            &who,
            &meta,
            &uuid_param(&id)?,
            &document.name,
            media_type,
            &body,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[utoipa::path(get, path = "/api/v1/tenders/{tender_id}/documents", tag = "tenders", params(("tender_id" = String, Path)),
    responses((status = 200, body = Vec<DocumentView>, description = "A published call's documents (no account needed), or a draft's for its buyer"), (status = "4XX", body = Problem)))]
pub async fn documents(
    Extension(procurement): Cat,
    who: Option<Caller>,
    PathParam(id): PathParam<String>,
) -> Result<Json<Vec<DocumentView>>, ApiError> {
    let who = who.map(|Caller(p)| p);
    Ok(Json(
        procurement
            .documents(who.as_ref(), &uuid_param(&id)?)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/tenders/{tender_id}/documents/{document_id}", tag = "tenders",
    params(("tender_id" = String, Path), ("document_id" = String, Path)),
    responses((status = 200, content_type = "application/octet-stream", description = "The file, as attached"), (status = "4XX", body = Problem)))]
pub async fn document(
    Extension(procurement): Cat,
    who: Option<Caller>,
    PathParam((id, document)): PathParam<(String, String)>,
) -> Result<Response, ApiError> {
    let who = who.map(|Caller(p)| p);
    let (view, bytes) = procurement
        .document(who.as_ref(), &uuid_param(&id)?, &uuid_param(&document)?)
        .await?;
    Ok(document_response(&view, bytes))
}

/// A document as a download: its type, its name, never sniffed.
fn document_response(view: &DocumentView, bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, view.media_type.clone()),
            (header::CONTENT_DISPOSITION, view.content_disposition()),
            // A buyer's upload, on the console's origin: never active.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox".to_owned(),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (header::CACHE_CONTROL, "private, no-cache".to_owned()),
        ],
        bytes,
    )
        .into_response()
}

#[utoipa::path(delete, path = "/api/v1/tenders/{tender_id}/documents/{document_id}", tag = "tenders",
    params(("tender_id" = String, Path), ("document_id" = String, Path)),
    responses((status = 204, description = "Removed from the draft"), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn remove_document(
    Extension(procurement): Cat,
    Caller(who): Caller,
    Meta(meta): Meta,
    PathParam((id, document)): PathParam<(String, String)>,
) -> Result<StatusCode, ApiError> {
    procurement
        .remove_document(&who, &meta, &uuid_param(&id)?, &uuid_param(&document)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
