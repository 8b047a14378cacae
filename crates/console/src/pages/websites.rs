//! The organisation's buckets as websites: which are published, at which
//! address, and the form that publishes one (index and error documents) or
//! takes it down. What S3's `PutBucketWebsite` does, for people without an
//! S3 client.

use askama::Template;
use axum::Extension;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use nuage_domain::DomainError;
use nuage_domain::website::WebsiteConfig;
use nuage_service::ServiceError;
use nuage_storage::domains::DomainClaim;
use nuage_storage::{Storage, StorageError};

use super::{Pairs, current_org, field, storage_caller as caller, storage_error};
use crate::error::{FormAlert, FormError, PageError};
use crate::form::Posted;
use crate::session::Ctx;
use crate::views::Chrome;

/// Where the website listener is, for the sites' addresses; none when the
/// operator runs no website listener.
#[derive(Debug, Clone)]
pub struct WebsiteBase {
    pub scheme: String,
    pub domain: String,
    pub port: u16,
}

impl WebsiteBase {
    pub fn url(&self, bucket: &str) -> String {
        let default = matches!(
            (self.scheme.as_str(), self.port),
            ("http", 80) | ("https", 443)
        );
        if default {
            format!("{}://{bucket}.{}/", self.scheme, self.domain)
        } else {
            format!("{}://{bucket}.{}:{}/", self.scheme, self.domain, self.port)
        }
    }
}

pub struct SiteRow {
    pub bucket: String,
    pub published: bool,
    pub url: Option<String>,
    pub index: String,
    pub error: String,
    pub domains: Vec<DomainClaim>,
}

#[derive(Template)]
#[template(path = "websites.html")]
pub struct WebsitesPage {
    pub c: Chrome,
    pub csrf: String,
    pub org_name: Option<String>,
    /// An owner or admin, who may publish.
    pub manages: bool,
    pub listener: bool,
    pub rows: Vec<SiteRow>,
    pub error: FormAlert,
}

/// The storage's refusals, a website's settings named as such.
fn service_error(e: StorageError) -> ServiceError {
    match e {
        StorageError::InvalidArgument(m) => DomainError::invalid("website", m).into(),
        other => storage_error(other),
    }
}

async fn page(
    ctx: &Ctx,
    storage: &Storage,
    base: Option<&WebsiteBase>,
    error: FormAlert,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let mut view = WebsitesPage {
        c: ctx.chrome("websites"),
        csrf: session.csrf_token.clone(),
        org_name: None,
        manages: false,
        listener: base.is_some(),
        rows: Vec::new(),
        error,
    };
    if let Some((org, membership)) = current_org(session)? {
        view.org_name = Some(membership.org_name.clone());
        view.manages = membership.role.manages_org();
        let caller = caller(ctx, storage, session, org).await?;
        let buckets = storage.list_buckets(&caller).await.map_err(service_error)?;
        for b in buckets {
            let config = match storage.website(&caller, &b.name).await {
                Ok(c) => Some(c),
                Err(StorageError::NoSuchWebsiteConfiguration) => None,
                Err(e) => return Err(service_error(e).into()),
            };
            let domains = if config.is_some() {
                storage.domains(&caller, &b.name).await?
            } else {
                Vec::new()
            };
            view.rows.push(SiteRow {
                domains,
                url: config.as_ref().and(base).map(|base| base.url(&b.name)),
                published: config.is_some(),
                index: config
                    .as_ref()
                    .and_then(|c| c.index_suffix.clone())
                    .unwrap_or_else(|| "index.html".into()),
                error: config.and_then(|c| c.error_key).unwrap_or_default(),
                bucket: b.name,
            });
        }
    }
    let status = view.error.status_or(StatusCode::OK);
    ctx.page(status, &view)
}

pub async fn websites(
    ctx: Ctx,
    Extension(storage): Extension<Storage>,
    base: Option<Extension<WebsiteBase>>,
) -> Result<Response, PageError> {
    page(
        &ctx,
        &storage,
        base.as_ref().map(|b| &b.0),
        FormAlert::none(),
    )
    .await
}

/// Publishes a bucket (`index`, `error`), or takes it down (`unpublish`).
pub async fn save(
    Extension(storage): Extension<Storage>,
    base: Option<Extension<WebsiteBase>>,
    Path(bucket): Path<String>,
    Posted { ctx, form: f, .. }: Posted<Pairs>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let Some((org, membership)) = current_org(session)? else {
        return Err(PageError::NotFound);
    };
    let outcome = if !membership.role.manages_org() {
        Err(ServiceError::Forbidden(
            "an owner or admin of the organisation publishes its websites".into(),
        ))
    } else {
        let config = (field(&f, "action") != "unpublish").then(|| WebsiteConfig {
            index_suffix: Some(field(&f, "index")),
            error_key: Some(field(&f, "error")).filter(|e| !e.is_empty()),
            ..WebsiteConfig::default()
        });
        storage
            .set_website(
                &caller(&ctx, &storage, session, org).await?,
                &bucket,
                config,
            )
            .await
            .map_err(service_error)
    };
    answer(&ctx, &storage, base.as_ref().map(|b| &b.0), outcome).await
}

/// Claims a domain for a published bucket (`claim`), looks for its proof
/// (`verify`), or drops it (`release`).
pub async fn domains(
    Extension(storage): Extension<Storage>,
    base: Option<Extension<WebsiteBase>>,
    Path(bucket): Path<String>,
    Posted { ctx, form: f, .. }: Posted<Pairs>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let Some((org, membership)) = current_org(session)? else {
        return Err(PageError::NotFound);
    };
    let caller = caller(&ctx, &storage, session, org).await?;
    let domain = field(&f, "domain");
    let outcome = if !membership.role.manages_org() {
        Err(ServiceError::Forbidden(
            "an owner or admin of the organisation manages its websites' domains".into(),
        ))
    } else {
        match field(&f, "action").as_str() {
            "claim" => storage
                .claim_domain(&caller, &bucket, &domain)
                .await
                .map(drop),
            "verify" => storage
                .verify_domain(&caller, &bucket, &domain)
                .await
                .map(drop),
            "release" => storage.release_domain(&caller, &bucket, &domain).await,
            _ => Err(DomainError::invalid("action", "claim, verify or release").into()),
        }
    };
    answer(&ctx, &storage, base.as_ref().map(|b| &b.0), outcome).await
}

/// Back to the page with a notice, or the page again with the refusal.
async fn answer(
    ctx: &Ctx,
    storage: &Storage,
    base: Option<&WebsiteBase>,
    outcome: Result<(), ServiceError>,
) -> Result<Response, PageError> {
    match outcome {
        Ok(()) => Ok(Redirect::to("/websites?notice=setting_saved").into_response()),
        Err(e) => {
            let error = FormError::from_service(ctx.t, e)?;
            page(ctx, storage, base, error.into()).await
        }
    }
}
