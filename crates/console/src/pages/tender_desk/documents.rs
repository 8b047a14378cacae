//! A call's documents: added, served under a sandbox, removed.

use super::*;

/// The name of a document the buyer's script uploads.
#[derive(Default, serde::Deserialize)]
pub struct DocumentName {
    #[serde(default)]
    pub name: String,
}

/// Receives a document of a draft from the buyer's script.
pub async fn add_document(
    ctx: Ctx,
    Extension(procurement): Extension<Procurement>,
    Path(id): Path<String>,
    query: Result<Query<DocumentName>, QueryRejection>,
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
    let name = crate::pages::read_query(query).name;
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let outcome = procurement
        .add_document(
            &session.principal(),
            &ctx.meta,
            &id,
            &name,
            media_type,
            &body,
        )
        .await;
    crate::script::answer(&ctx, outcome)
}

/// A call's document, for whoever may read the call.
pub async fn document(
    ctx: Ctx,
    Extension(procurement): Extension<Procurement>,
    Path((id, document)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let id = tender_id(&id)?;
    let document = tender_id(&document)?;
    let who = ctx
        .session
        .as_ref()
        .filter(|s| !s.second_factor_pending)
        .map(Session::principal);
    let (view, bytes) = procurement.document(who.as_ref(), &id, &document).await?;
    Ok((
        [
            (header::CONTENT_TYPE, view.media_type.clone()),
            (header::CONTENT_DISPOSITION, view.content_disposition()),
            // A buyer's upload, on the console's origin: never active.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox".to_owned(),
            ),
            (header::CACHE_CONTROL, "private, no-cache".to_owned()),
        ],
        bytes,
    )
        .into_response())
}

pub async fn remove_document(
    Extension(procurement): Extension<Procurement>,
    Path((id, document)): Path<(String, String)>,
    Posted { ctx, form: _, .. }: Posted<Pairs>,
) -> Result<Response, PageError> {
    let id = tender_id(&id)?;
    let document = tender_id(&document)?;
    let session = ctx.user()?;
    let outcome = procurement
        .remove_document(&session.principal(), &ctx.meta, &id, &document)
        .await;
    act(&ctx, &procurement, &id, "document_removed", outcome).await
}
