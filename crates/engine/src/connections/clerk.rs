//! Connections whose Google grant Clerk holds (the path of people who sign
//! in with Google through Clerk): the access token comes from Clerk's
//! Backend API for the person's Clerk user (their JWT's `sub`), its scopes
//! are checked as Google's are, and repairing one means re-authorising in
//! Clerk, then asking Clerk again.

use super::*;
use providers::google::oauth::OAuthError;

impl Connections {
    /// Connect the Google account Clerk holds a token for, for Clerk user
    /// `clerk_user` (connecting it again updates the same connection).
    pub async fn connect_with_clerk(
        &self,
        workspace: WorkspaceId,
        user: UserId,
        clerk_user: &str,
        integration_type: IntegrationType,
    ) -> Result<Integration, ServiceError> {
        self.save_from_clerk(workspace, user, clerk_user, integration_type, None)
            .await
    }

    /// Connect what Clerk holds; with `expected_account`, only if it is
    /// still that Google account (a repair never creates another connection).
    async fn save_from_clerk(
        &self,
        workspace: WorkspaceId,
        user: UserId,
        clerk_user: &str,
        integration_type: IntegrationType,
        expected_account: Option<&str>,
    ) -> Result<Integration, ServiceError> {
        let Some(clerk) = self.vault.clerk() else {
            return Err(ServiceError::Conflict(
                "Clerk is not configured on this server (MAILWRIGHT_CLERK_SECRET_KEY).".into(),
            ));
        };
        let no_token = || {
            ServiceError::Conflict(
                "Clerk holds no Google access for you: sign in with Google through Clerk, allowing Gmail access, then connect again."
                    .into(),
            )
        };
        let token = match self.vault.token_from_clerk(clerk_user).await {
            Ok(token) => token,
            Err(OAuthError::InvalidGrant { .. }) => return Err(no_token()),
            Err(OAuthError::Unavailable(reason)) => {
                return Err(ServiceError::ProviderUnavailable(format!(
                    "Clerk did not answer ({reason}); try again."
                )));
            }
            Err(OAuthError::Rejected(reason)) => {
                tracing::error!(reason, "Clerk refused to hand out a Google token");
                return Err(ServiceError::ProviderError(
                    "Clerk refused Mailwright's request; the operator should check MAILWRIGHT_CLERK_SECRET_KEY."
                        .into(),
                ));
            }
        };
        let account = match clerk.google_account(&token.access_token).await {
            Ok(account) => account,
            Err(OAuthError::InvalidGrant { .. }) => return Err(no_token()),
            Err(error) => {
                tracing::warn!(error = %error, "Google's userinfo failed for a token from Clerk");
                return Err(ServiceError::ProviderUnavailable(
                    "Google did not say whose account Clerk's token opens; try again.".into(),
                ));
            }
        };
        if expected_account.is_some_and(|expected| expected != account.sub) {
            return Err(ServiceError::Conflict(
                "Clerk now holds another Google account for this person; connect it as a new connection."
                    .into(),
            ));
        }
        let Some(email) = account.email.clone() else {
            return Err(ServiceError::Conflict(
                "Clerk's Google token does not show the account's email: allow the email permission when signing in with Google through Clerk."
                    .into(),
            ));
        };
        let granted = ScopeSet::parse(token.scope.as_deref().unwrap_or_default());
        let keyring = self.vault.keyring();
        // A concurrent connect of the same account can create the row first;
        // then start over with its id (the ciphertexts are bound to the id).
        for _ in 0..3 {
            let id = self
                .store
                .integration_id_for_account(workspace, integration_type, &account.sub)
                .await?
                .unwrap_or_else(IntegrationId::new);
            let grant = Grant {
                user,
                integration_type,
                provider_account_id: account.sub.clone(),
                email: email.clone(),
                display_name: account.name.clone(),
                granted_scopes: granted.clone(),
                access_token: keyring.seal(
                    token.access_token.expose_secret().as_bytes(),
                    &token_context(id, "access"),
                ),
                refresh_token: None,
                expires_at: store::now()
                    + chrono::Duration::from_std(token.expires_in)
                        .unwrap_or(chrono::Duration::minutes(15)),
                token_source: TokenSource::Clerk {
                    user_id: clerk_user.to_owned(),
                },
            };
            match self.store.save_connection(workspace, id, &grant).await {
                Ok(integration) => {
                    tracing::info!(integration = %integration.id, status = integration.status.as_str(), "connected a Google account Clerk holds");
                    if integration.status == IntegrationStatus::Connected {
                        self.autodraft.resume_workflow_sync(&integration).await;
                    }
                    return Ok(integration);
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Conflict(
            "The connection changed while it was saved; try again.".into(),
        ))
    }

    /// Ask Clerk again for a connection it holds: repaired when Clerk now
    /// has a token with every scope, else the person re-authorises in Clerk.
    pub(super) async fn reconnect_with_clerk(
        &self,
        integration: &Integration,
        clerk_user: &str,
    ) -> Reconnect {
        match self
            .save_from_clerk(
                integration.workspace,
                integration.user,
                clerk_user,
                integration.integration_type,
                Some(&integration.provider_account_id),
            )
            .await
        {
            Ok(repaired) if repaired.status == IntegrationStatus::Connected => {
                Reconnect::Repaired(Box::new(repaired))
            }
            Ok(_) => Reconnect::InClerk,
            Err(error) => {
                tracing::info!(integration = %integration.id, error = %error, "Clerk still holds no usable Google token");
                Reconnect::InClerk
            }
        }
    }
}
