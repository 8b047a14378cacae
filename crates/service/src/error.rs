//! The one error type of the use cases. Each protocol maps it once to its own
//! form (problem details, console page); internal details never reach a client.

use nuage_db::DbError;
use nuage_domain::DomainError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The input broke a rule; the message says which.
    #[error(transparent)]
    Invalid(#[from] DomainError),
    /// No credentials, or credentials that are wrong, expired or revoked.
    #[error("authentication required: {0}")]
    Unauthenticated(String),
    /// Authenticated, but not allowed to do this.
    #[error("not allowed: {0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the current state (e.g. a duplicate).
    #[error("{0}")]
    Conflict(String),
    /// Too many attempts; try again later.
    #[error("too many attempts, try again later")]
    RateLimited,
    #[error("storage: {0}")]
    Db(DbError),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<DbError> for ServiceError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict => Self::Conflict("it already exists".into()),
            other => Self::Db(other),
        }
    }
}

impl ServiceError {
    /// Whether the fault is the server's (logged, and shown as a generic 500).
    pub fn is_server_fault(&self) -> bool {
        matches!(self, Self::Db(_) | Self::Internal(_))
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
