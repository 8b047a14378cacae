//! The REST/JSON API of Nuage under `/api/v1`: bearer-token authentication,
//! RFC 9457 problem details for every error, cursor pagination, and
//! `Idempotency-Key` on creating POSTs. The OpenAPI 3.1 document is generated
//! from the handlers' annotations and served at `/api/v1/openapi.json`.

mod extract;
mod idempotency;
mod open_data;
pub mod problem;
mod routes;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use nuage_service::Platform;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

pub use problem::Problem;
use routes::{account, billing, catalogue, orgs, platform, storage, tenders, websites};

/// The largest JSON body the API accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(title = "Nuage API", description = "The REST API of Nuage, a sovereign cloud platform. Errors are RFC 9457 problem details; lists are paginated with `cursor` and `limit`; creating POSTs honour `Idempotency-Key`."),
    paths(
        platform::info, platform::verify_audit, platform::list_jobs, platform::run_job,
        account::sign_up, account::password_grant, account::me, account::sessions, account::end_sessions, account::create_token, account::list_tokens, account::revoke_token,
        account::create_app_password, account::list_app_passwords, account::revoke_app_password,
        account::begin_totp, account::confirm_totp, account::disable_totp,
        account::request_password_reset, account::confirm_password_reset,
        orgs::create_org, orgs::list_orgs, orgs::get_org, orgs::update_org, orgs::set_tax,
        orgs::add_member, orgs::invitations, orgs::accept_invitation, orgs::decline_invitation, orgs::list_members, orgs::remove_member, orgs::create_user, orgs::create_operator,
        orgs::create_s3_key, orgs::list_s3_keys, orgs::revoke_s3_key, orgs::org_audit,
        storage::set_quota, storage::usage, storage::daily_usage, storage::access_log, storage::maintain,
        websites::claim, websites::list, websites::verify, websites::release,
        catalogue::search, catalogue::organisation, catalogue::service, catalogue::offer, catalogue::self_description,
        catalogue::compare, catalogue::regions, catalogue::open_data_json, catalogue::open_data_csv, catalogue::declare_region,
        catalogue::get_profile, catalogue::put_profile, catalogue::list_services, catalogue::create_service,
        catalogue::list_offers, catalogue::create_offer, catalogue::put_service, catalogue::put_offer, catalogue::move_sheet,
        catalogue::review_queue, catalogue::review, catalogue::declare, catalogue::undeclare,
        catalogue::order, catalogue::subscriptions, catalogue::sales, catalogue::subscription, catalogue::fulfil,
        catalogue::cancel, catalogue::change_offer, catalogue::set_webhook, catalogue::deliveries,
        billing::run, billing::ingest, billing::invoices, billing::invoice, billing::facturx, billing::credit, billing::forecast, billing::quota_alerts, billing::set_quota_alerts, billing::revenue,
        tenders::create, tenders::of_buyer, tenders::list, tenders::get, tenders::update, tenders::publish,
        tenders::submit, tenders::envelopes, tenders::withdraw, tenders::open, tenders::evaluation,
        tenders::mark, tenders::award, tenders::sign, tenders::cancel,
        tenders::ocds_all, tenders::ocds_one, tenders::decp,
        tenders::questions, tenders::ask, tenders::answer, tenders::amend, tenders::versions,
        tenders::matching, tenders::add_document, tenders::documents, tenders::document,
        tenders::remove_document, tenders::results,
    ),
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

/// The API's routes, to be merged at the root of the main listener.
pub fn router(platform: Platform) -> Router {
    let document = ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".into());
    let api = Router::new()
        .route(
            "/openapi.json",
            get(move || async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    document,
                )
            }),
        )
        .route("/platform", get(platform::info))
        .route("/audit/verify", get(platform::verify_audit))
        .route("/jobs", get(platform::list_jobs))
        .route("/jobs/{name}/run", post(platform::run_job))
        .route("/signup", post(account::sign_up))
        .route("/auth/token", post(account::password_grant))
        .route("/me", get(account::me))
        .route(
            "/me/sessions",
            get(account::sessions).delete(account::end_sessions),
        )
        .route("/me/totp", post(account::begin_totp))
        .route("/me/totp/confirm", post(account::confirm_totp))
        .route("/me/totp/disable", post(account::disable_totp))
        .route("/password-reset", post(account::request_password_reset))
        .route(
            "/password-reset/confirm",
            post(account::confirm_password_reset),
        )
        .route(
            "/tokens",
            post(account::create_token).get(account::list_tokens),
        )
        .route("/tokens/{token_id}", delete(account::revoke_token))
        .route(
            "/app-passwords",
            post(account::create_app_password).get(account::list_app_passwords),
        )
        .route("/app-passwords/{id}", delete(account::revoke_app_password))
        .route("/orgs", post(orgs::create_org).get(orgs::list_orgs))
        .route("/orgs/{org_id}", get(orgs::get_org).patch(orgs::update_org))
        .route("/orgs/{org_id}/tax", put(orgs::set_tax))
        .route(
            "/orgs/{org_id}/members",
            post(orgs::add_member).get(orgs::list_members),
        )
        .route(
            "/orgs/{org_id}/members/{user_id}",
            delete(orgs::remove_member),
        )
        .route("/invitations", get(orgs::invitations))
        .route(
            "/invitations/{invitation_id}/accept",
            post(orgs::accept_invitation),
        )
        .route(
            "/invitations/{invitation_id}/decline",
            post(orgs::decline_invitation),
        )
        .route(
            "/orgs/{org_id}/s3-keys",
            post(orgs::create_s3_key).get(orgs::list_s3_keys),
        )
        .route("/orgs/{org_id}/audit", get(orgs::org_audit))
        .route("/s3-keys/{access_key_id}", delete(orgs::revoke_s3_key))
        .route(
            "/orgs/{org_id}/quota",
            axum::routing::put(storage::set_quota),
        )
        .route("/orgs/{org_id}/storage", get(storage::usage))
        .route("/orgs/{org_id}/usage", get(storage::daily_usage))
        .route("/orgs/{org_id}/access-log", get(storage::access_log))
        .route("/storage/maintenance", post(storage::maintain))
        .route(
            "/orgs/{org_id}/websites/{bucket}/domains",
            post(websites::claim).get(websites::list),
        )
        .route(
            "/orgs/{org_id}/websites/{bucket}/domains/{domain}",
            delete(websites::release),
        )
        .route(
            "/orgs/{org_id}/websites/{bucket}/domains/{domain}/verify",
            post(websites::verify),
        )
        .route("/directory/search", get(catalogue::search))
        .route(
            "/directory/organisations/{org_id}",
            get(catalogue::organisation),
        )
        .route("/directory/services/{service_id}", get(catalogue::service))
        .route("/catalogue/offers/{offer_id}", get(catalogue::offer))
        .route(
            "/catalogue/offers/{offer_id}/self-description",
            get(catalogue::self_description),
        )
        .route("/catalogue/compare", post(catalogue::compare))
        .route("/regions", get(catalogue::regions))
        .route("/regions/{name}", put(catalogue::declare_region))
        .route("/open-data/catalogue.json", get(catalogue::open_data_json))
        .route("/open-data/{table}", get(catalogue::open_data_csv))
        .route(
            "/orgs/{org_id}/profile",
            get(catalogue::get_profile).put(catalogue::put_profile),
        )
        .route(
            "/orgs/{org_id}/services",
            get(catalogue::list_services).post(catalogue::create_service),
        )
        .route(
            "/orgs/{org_id}/offers",
            get(catalogue::list_offers).post(catalogue::create_offer),
        )
        .route("/services/{service_id}", put(catalogue::put_service))
        .route("/offers/{offer_id}", put(catalogue::put_offer))
        .route("/sheets/{kind}/{id}/state", post(catalogue::move_sheet))
        .route("/review", get(catalogue::review_queue))
        .route("/review/{kind}/{id}", post(catalogue::review))
        .route("/services/{service_id}/{relation}", put(catalogue::declare))
        .route(
            "/services/{service_id}/{relation}/{org_id}",
            delete(catalogue::undeclare),
        )
        .route("/orgs/{org_id}/orders", post(catalogue::order))
        .route(
            "/orgs/{org_id}/subscriptions",
            get(catalogue::subscriptions),
        )
        .route("/orgs/{org_id}/sales", get(catalogue::sales))
        .route(
            "/subscriptions/{subscription_id}",
            get(catalogue::subscription),
        )
        .route(
            "/subscriptions/{subscription_id}/fulfilment",
            post(catalogue::fulfil),
        )
        .route(
            "/subscriptions/{subscription_id}/cancel",
            post(catalogue::cancel),
        )
        .route(
            "/subscriptions/{subscription_id}/change",
            post(catalogue::change_offer),
        )
        .route("/billing/runs", post(billing::run))
        .route("/billing/revenue", get(billing::revenue))
        .route("/usage-records", post(billing::ingest))
        .route("/orgs/{org_id}/invoices", get(billing::invoices))
        .route("/orgs/{org_id}/forecast", get(billing::forecast))
        .route(
            "/orgs/{org_id}/quota-alerts",
            get(billing::quota_alerts).put(billing::set_quota_alerts),
        )
        .route("/invoices/{invoice_id}", get(billing::invoice))
        .route("/invoices/{invoice_id}/facturx", get(billing::facturx))
        .route("/invoices/{invoice_id}/credit-notes", post(billing::credit))
        .route("/orgs/{org_id}/webhook", put(catalogue::set_webhook))
        .route(
            "/orgs/{org_id}/webhook/deliveries",
            get(catalogue::deliveries),
        )
        .route(
            "/orgs/{org_id}/tenders",
            post(tenders::create).get(tenders::of_buyer),
        )
        .route("/orgs/{org_id}/matching-tenders", get(tenders::matching))
        .route("/tenders", get(tenders::list))
        .route(
            "/tenders/{tender_id}",
            get(tenders::get).put(tenders::update),
        )
        .route("/tenders/{tender_id}/publish", post(tenders::publish))
        .route(
            "/tenders/{tender_id}/bids",
            post(tenders::submit)
                .get(tenders::envelopes)
                .delete(tenders::withdraw)
                // An envelope may carry documents: larger than a JSON body.
                .layer(DefaultBodyLimit::max(
                    nuage_domain::tender::MAX_BID_BYTES + 1024,
                )),
        )
        .route(
            "/tenders/{tender_id}/documents",
            post(tenders::add_document)
                .get(tenders::documents)
                .layer(DefaultBodyLimit::max(
                    nuage_domain::tender::MAX_DOCUMENT_BYTES + 1024,
                )),
        )
        .route(
            "/tenders/{tender_id}/documents/{document_id}",
            get(tenders::document).delete(tenders::remove_document),
        )
        .route("/tenders/{tender_id}/results", get(tenders::results))
        .route("/tenders/{tender_id}/open", post(tenders::open))
        .route(
            "/tenders/{tender_id}/lots/{lot}/evaluation",
            get(tenders::evaluation),
        )
        .route(
            "/tenders/{tender_id}/lots/{lot}/bids/{bid_id}/marks",
            put(tenders::mark),
        )
        .route(
            "/tenders/{tender_id}/lots/{lot}/award",
            post(tenders::award),
        )
        .route("/tenders/{tender_id}/lots/{lot}/sign", post(tenders::sign))
        .route("/tenders/{tender_id}/cancel", post(tenders::cancel))
        .route(
            "/tenders/{tender_id}/questions",
            get(tenders::questions).post(tenders::ask),
        )
        .route(
            "/tenders/{tender_id}/questions/{question_id}/answer",
            post(tenders::answer),
        )
        .route("/tenders/{tender_id}/amendments", post(tenders::amend))
        .route("/tenders/{tender_id}/versions", get(tenders::versions))
        .route("/open-data/ocds.json", get(tenders::ocds_all))
        .route("/open-data/decp.json", get(tenders::decp))
        .route(
            "/open-data/tenders/{tender_id}/ocds.json",
            get(tenders::ocds_one),
        )
        .route("/users", post(orgs::create_user))
        .route("/operators", post(orgs::create_operator))
        .fallback(|| async {
            Problem::new(
                axum::http::StatusCode::NOT_FOUND,
                "not-found",
                "no such resource in the API",
            )
        })
        .layer(axum::middleware::map_response(
            problem::problem_for_bare_errors,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(platform);
    Router::new().nest("/api/v1", api)
}
