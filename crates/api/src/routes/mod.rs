//! The API's resources, one module each.

pub mod account;
pub mod billing;
pub mod catalogue;
pub mod orgs;
pub mod platform;
pub mod storage;
pub mod tenders;
pub mod websites;

use nuage_domain::DomainError;
use nuage_domain::ids::{OrgId, TokenId, UserId};

use crate::problem::ApiError;

pub(crate) fn org_id(raw: &str) -> Result<OrgId, ApiError> {
    Ok(OrgId::parse(raw).map_err(nuage_service::ServiceError::from)?)
}

pub(crate) fn user_id(raw: &str) -> Result<UserId, ApiError> {
    Ok(UserId::parse(raw).map_err(nuage_service::ServiceError::from)?)
}

pub(crate) fn token_id(raw: &str) -> Result<TokenId, ApiError> {
    Ok(TokenId::parse(raw).map_err(nuage_service::ServiceError::from)?)
}

pub(crate) fn role(raw: &str) -> Result<nuage_domain::org::Role, ApiError> {
    nuage_domain::org::Role::parse(raw)
        .map_err(|e: DomainError| nuage_service::ServiceError::from(e).into())
}
