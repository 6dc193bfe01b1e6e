//! What a sandbox starts with.

use serde::{Deserialize, Serialize};

/// A registered OAuth client (what Google Cloud Console would hold).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: String,
    /// Exact-match list, as Google compares redirect URIs.
    pub redirect_uris: Vec<String>,
}

impl OAuthClient {
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        redirect_uris: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            redirect_uris: redirect_uris.into_iter().map(Into::into).collect(),
        }
    }
}

/// An account to create up front. Without a name, one is derived from the
/// email's local part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSpec {
    pub email: String,
    #[serde(default)]
    pub name: Option<String>,
}

impl AccountSpec {
    pub fn new(email: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            email: email.into(),
            name: Some(name.into()),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxConfig {
    #[serde(default)]
    pub clients: Vec<OAuthClient>,
    #[serde(default)]
    pub accounts: Vec<AccountSpec>,
}

impl SandboxConfig {
    pub fn with_client(mut self, client: OAuthClient) -> Self {
        self.clients.push(client);
        self
    }

    pub fn with_account(mut self, account: AccountSpec) -> Self {
        self.accounts.push(account);
        self
    }
}
