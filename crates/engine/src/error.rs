//! What a service call can fail with, in the terms the API and the UI answer
//! in, and the one mapping from the store's errors to them.

use domain::IntegrationId;
use domain::explain::explain;
use domain::scopes::IntegrationStatus;
use domain::workflows::Invalid;
use store::StoreError;

use crate::vault::VaultError;

/// A service's failure. `server` turns each into its problem response (and
/// a page into its words); nothing here carries SQL or upstream bodies.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Missing, or in another workspace: the two are indistinguishable.
    #[error("not found")]
    NotFound,
    /// The input is wrong; each problem names its field.
    #[error("validation failed")]
    Invalid(Vec<Invalid>),
    /// The request conflicts with the current state; the text says how.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The connection cannot do this until a person repairs it: `status`
    /// says how it is broken, `message` says so in words.
    #[error("connection {integration} is {}", status.as_str())]
    Connection {
        integration: IntegrationId,
        status: IntegrationStatus,
        missing_scopes: Vec<String>,
        message: String,
    },
    /// An outside service did not answer; worth trying again later.
    #[error("provider unavailable: {0}")]
    ProviderUnavailable(String),
    /// An outside service refused for good; the sentence says what.
    #[error("provider error: {0}")]
    ProviderError(String),
    /// The database cannot answer right now.
    #[error("unavailable: {detail}")]
    Unavailable {
        detail: String,
        #[source]
        cause: anyhow::Error,
    },
    /// A bug or an unexpected failure: logged by the caller, answered
    /// generically.
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl ServiceError {
    /// One field that is wrong.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ServiceError {
        ServiceError::Invalid(vec![Invalid::new(field, message)])
    }

    /// Connection `integration` (to `email`) is `status`, lacking
    /// `missing_scopes`: explained in the words every page uses.
    pub fn connection(
        integration: IntegrationId,
        email: &str,
        status: IntegrationStatus,
        missing_scopes: Vec<String>,
    ) -> ServiceError {
        let message = explain(status, Some(email), &missing_scopes).message();
        ServiceError::Connection {
            integration,
            status,
            missing_scopes,
            message,
        }
    }

    /// A vault error of a call for connection `integration` (to `email`).
    pub fn from_vault(error: VaultError, integration: IntegrationId, email: &str) -> ServiceError {
        let error = match error {
            VaultError::NotFound => return ServiceError::NotFound,
            VaultError::Internal(cause) => return ServiceError::Internal(cause),
            other => other,
        };
        let status = match &error {
            VaultError::MissingScopes(_) => IntegrationStatus::MissingScopes,
            VaultError::NeedsReauth => IntegrationStatus::NeedsReauth,
            VaultError::Disconnected => IntegrationStatus::Disconnected,
            _ => IntegrationStatus::Connected,
        };
        let missing_scopes = match &error {
            VaultError::MissingScopes(scopes) => scopes.clone(),
            _ => Vec::new(),
        };
        let facing = error.user_facing(Some(email));
        match (status, facing.retry) {
            (IntegrationStatus::Connected, Some(_)) => {
                ServiceError::ProviderUnavailable(format!("{} Try again shortly.", facing.problem))
            }
            (IntegrationStatus::Connected, None) => ServiceError::ProviderError(facing.message()),
            (status, _) => ServiceError::Connection {
                integration,
                status,
                missing_scopes,
                message: facing.message(),
            },
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ServiceError::NotFound,
            StoreError::Conflict(_) => ServiceError::Conflict("This already exists.".into()),
            error @ StoreError::Unavailable { .. } => ServiceError::Unavailable {
                detail: "The database is unavailable; try again shortly.".into(),
                cause: error.into(),
            },
            other => ServiceError::Internal(other.into()),
        }
    }
}
