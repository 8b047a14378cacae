//! The REST/JSON API of Nuage under `/api/v1`: bearer-token authentication,
//! RFC 9457 problem details for every error, cursor pagination, and
//! `Idempotency-Key` on creating POSTs. The OpenAPI 3.1 document is generated
//! from the handlers' annotations and served at `/api/v1/openapi.json`.

mod extract;
mod idempotency;
mod open_data;
pub mod problem;
mod routes;

/// What the command-line client reads of the API's own answers.
pub use routes::orgs::CreatedS3Key;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get};
use nuage_service::Platform;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

pub use problem::Problem;
use routes::{account, billing, catalogue, orgs, platform, storage, tenders, websites};

/// The largest JSON body the API accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(title = "Nuage API", description = "The REST API of Nuage, a sovereign cloud platform. Errors are RFC 9457 problem details; lists are paginated with `cursor` and `limit`; creating POSTs honour `Idempotency-Key`."),
    // Every other path comes from the router (`routes!` in `router`).
    paths(catalogue::open_data_csv),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API's routes, to be merged at the root of the main listener. Each
/// handler's `#[utoipa::path]` gives both its route and its entry in the
/// OpenAPI document: the two cannot differ.
pub fn router(platform: Platform) -> Router {
    let (api, document) =
        OpenApiRouter::with_openapi(ApiDoc::openapi())
            .routes(routes!(platform::info))
            .routes(routes!(platform::keys))
            .routes(routes!(platform::rotate_key))
            .routes(routes!(platform::rewrap_progress))
            .routes(routes!(platform::verify_audit))
            .routes(routes!(platform::list_jobs))
            .routes(routes!(platform::run_job))
            .routes(routes!(account::sign_up))
            .routes(routes!(account::password_grant))
            .routes(routes!(account::me))
            .routes(routes!(account::sessions, account::end_sessions))
            .routes(routes!(account::begin_totp))
            .routes(routes!(account::confirm_totp))
            .routes(routes!(account::disable_totp))
            .routes(routes!(account::request_password_reset))
            .routes(routes!(account::confirm_password_reset))
            .routes(routes!(account::create_token, account::list_tokens))
            .routes(routes!(account::revoke_token))
            .routes(routes!(
                account::create_app_password,
                account::list_app_passwords
            ))
            .routes(routes!(account::revoke_app_password))
            .routes(routes!(orgs::create_org, orgs::list_orgs))
            .routes(routes!(orgs::get_org, orgs::update_org))
            .routes(routes!(orgs::set_tax))
            .routes(routes!(orgs::legal_identity, orgs::set_legal_identity))
            .routes(routes!(orgs::add_member, orgs::list_members))
            .routes(routes!(orgs::remove_member))
            .routes(routes!(orgs::invitations))
            .routes(routes!(orgs::accept_invitation))
            .routes(routes!(orgs::decline_invitation))
            .routes(routes!(orgs::create_s3_key, orgs::list_s3_keys))
            .routes(routes!(orgs::org_audit))
            .routes(routes!(orgs::revoke_s3_key))
            .routes(routes!(storage::set_quota))
            .routes(routes!(
                storage::public_access_block,
                storage::set_public_access_block
            ))
            .routes(routes!(storage::usage))
            .routes(routes!(storage::org_key))
            .routes(routes!(storage::custody, storage::set_custody))
            .routes(routes!(storage::rotate_org_key))
            .routes(routes!(storage::daily_usage))
            .routes(routes!(storage::access_log))
            .routes(routes!(storage::maintain))
            .routes(routes!(websites::claim, websites::list))
            .routes(routes!(websites::release))
            .routes(routes!(websites::verify))
            .routes(routes!(catalogue::search))
            .routes(routes!(catalogue::organisation))
            .routes(routes!(catalogue::service))
            .routes(routes!(catalogue::offer))
            .routes(routes!(catalogue::self_description))
            .routes(routes!(catalogue::compare))
            .routes(routes!(catalogue::regions))
            .routes(routes!(catalogue::declare_region))
            .routes(routes!(catalogue::open_data_json))
            // Documented as `{table}.csv` (in `ApiDoc`), a path axum cannot
            // route as such: the handler takes the whole segment.
            .route("/api/v1/open-data/{table}", get(catalogue::open_data_csv))
            .routes(routes!(catalogue::get_profile, catalogue::put_profile))
            .routes(routes!(catalogue::list_services, catalogue::create_service))
            .routes(routes!(catalogue::list_offers, catalogue::create_offer))
            .routes(routes!(catalogue::put_service))
            .routes(routes!(catalogue::put_offer))
            .routes(routes!(catalogue::move_sheet))
            .routes(routes!(catalogue::review_queue))
            .routes(routes!(catalogue::review))
            .routes(routes!(catalogue::declare))
            .routes(routes!(catalogue::undeclare))
            .routes(routes!(catalogue::order))
            .routes(routes!(catalogue::subscriptions))
            .routes(routes!(catalogue::sales))
            .routes(routes!(catalogue::subscription))
            .routes(routes!(catalogue::fulfil))
            .routes(routes!(catalogue::cancel))
            .routes(routes!(catalogue::change_offer))
            .routes(routes!(billing::run))
            .routes(routes!(billing::revenue))
            .routes(routes!(billing::ingest))
            .routes(routes!(billing::invoices))
            .routes(routes!(billing::statements))
            .routes(routes!(billing::forecast))
            .routes(routes!(billing::quota_alerts, billing::set_quota_alerts))
            .routes(routes!(billing::invoice))
            .routes(routes!(billing::facturx))
            .routes(routes!(billing::ubl))
            .routes(routes!(billing::deliveries))
            .routes(routes!(billing::credit))
            .routes(routes!(catalogue::set_webhook))
            .routes(routes!(catalogue::deliveries))
            .routes(routes!(tenders::create, tenders::of_buyer))
            .routes(routes!(tenders::matching))
            .routes(routes!(tenders::list))
            .routes(routes!(tenders::get, tenders::update))
            .routes(routes!(tenders::publish))
            // An envelope may carry documents: larger than a JSON body.
            .routes(
                routes!(tenders::submit, tenders::envelopes, tenders::withdraw).layer(
                    DefaultBodyLimit::max(nuage_domain::tender::MAX_BID_BYTES + 1024),
                ),
            )
            .routes(routes!(tenders::add_document, tenders::documents).layer(
                DefaultBodyLimit::max(nuage_domain::tender::MAX_DOCUMENT_BYTES + 1024),
            ))
            .routes(routes!(tenders::document, tenders::remove_document))
            .routes(routes!(tenders::results))
            .routes(routes!(tenders::open))
            .routes(routes!(tenders::evaluation))
            .routes(routes!(tenders::mark))
            .routes(routes!(tenders::award))
            .routes(routes!(tenders::sign))
            .routes(routes!(tenders::cancel))
            .routes(routes!(tenders::questions, tenders::ask))
            .routes(routes!(tenders::answer))
            .routes(routes!(tenders::amend))
            .routes(routes!(tenders::versions))
            .routes(routes!(tenders::ocds_all))
            .routes(routes!(tenders::decp))
            .routes(routes!(tenders::ocds_one))
            .routes(routes!(orgs::create_user))
            .routes(routes!(orgs::create_operator))
            .split_for_parts();
    let document = document.to_json().unwrap_or_else(|_| "{}".into());
    let not_found = || async {
        Problem::new(
            axum::http::StatusCode::NOT_FOUND,
            "not-found",
            "no such resource in the API",
        )
    };
    api.route(
        "/api/v1/openapi.json",
        get(move || async move {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                document,
            )
        }),
    )
    .route("/api/v1", any(not_found))
    .route("/api/v1/{*rest}", any(not_found))
    .layer(axum::middleware::map_response(
        problem::problem_for_bare_errors,
    ))
    .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
    .with_state(platform)
}
