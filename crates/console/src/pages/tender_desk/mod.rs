//! Running a call for tender in the console. The buyer drafts, publishes
//! with an opening key made in its own browser, answers questions, amends,
//! opens the bids, marks them, awards each lot and signs; a supplier asks
//! questions, seals its bid in its browser (static/tenders.js with the
//! bundled age-encryption) and withdraws it. The call's page
//! (pages/tenders.rs) shows each of them their part.

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use nuage_domain::DomainError;
use nuage_domain::catalogue::{Category, UsageProfile};
use nuage_domain::ids::OrgId;
use nuage_domain::tender::{
    Criterion, CriterionKind, Lot, Place, Requirement, SharesPolicy, TenderSpec,
};
use nuage_procurement::Procurement;
use nuage_procurement::tenders::{LotEvaluation, Marking, OpeningSecret, TenderView};
use nuage_service::ServiceError;
use nuage_service::auth::Session;
use rust_decimal::Decimal;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Choice, Pairs, Pick, current_org, decimal, field, list, number};
use crate::error::{FormAlert, FormError, PageError};
use crate::form::Posted;
use crate::i18n::{DeskTexts, Texts};
use crate::session::Ctx;
use crate::views::{Chrome, When};

mod actions;
mod documents;
mod draft;
mod evaluation;

use actions::act;
pub use actions::{answer, ask, cancel, open, publish, submit_bid, withdraw};
pub use documents::{add_document, document, remove_document};
use draft::session_org;
pub use draft::{create, edit_form, new_form, save};
pub use evaluation::{award, lot, mark, sign};

/// How many lots and criteria the drafting form offers (empty rows are left
/// out).
const LOT_ROWS: usize = 3;
const CRITERION_ROWS: usize = 5;

pub(super) fn tender_id(id: &str) -> Result<String, PageError> {
    uuid::Uuid::parse_str(id)
        .map(|u| u.to_string())
        .map_err(|_| PageError::NotFound)
}

pub(super) fn back_to(id: &str, notice: &str) -> Response {
    Redirect::to(&format!("/tenders/{id}?notice={notice}")).into_response()
}
