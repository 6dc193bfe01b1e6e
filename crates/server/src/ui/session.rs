//! Who is looking at a page: the extractors every signed-in page and form
//! takes, so no handler checks the session (or a form's CSRF token) itself.
//! Someone signed out is sent to sign in.

use axum::Form;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::auth::{SessionUser, secrets};
use crate::http::ApiError;

/// A page for someone signed in.
pub(crate) struct SignedIn(pub SessionUser);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match state.auth.session(parts).await {
            Ok(Some(session)) => Ok(SignedIn(session)),
            Ok(None) => Err(to_signin()),
            Err(error) => Err(error.into_response()),
        }
    }
}

/// A form the page put its session's CSRF token in.
pub(crate) trait SessionForm {
    fn csrf(&self) -> &str;
}

/// A form posted by someone signed in, its CSRF token checked against their
/// session. Signed out: sent to sign in; a stale token: 403.
pub(crate) struct Posted<T>(pub SessionUser, pub T);

impl<T> FromRequest<AppState> for Posted<T>
where
    T: DeserializeOwned + SessionForm + Send,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let SignedIn(session) = SignedIn::from_request_parts(&mut parts, state).await?;
        let Form(form) = Form::<T>::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        if !secrets::constant_time_eq(form.csrf().as_bytes(), session.csrf_token.as_bytes()) {
            return Err(ApiError::Forbidden(
                "This form is stale; reload the page and try again.".into(),
            )
            .into_response());
        }
        Ok(Posted(session, form))
    }
}

fn to_signin() -> Response {
    Redirect::to("/signin").into_response()
}

/// The banner every signed-in page carries while a connection of the
/// workspace needs someone to act (so the news reaches people even when
/// notices are only logged): which connections, and what they need.
pub(crate) async fn attention(
    state: &AppState,
    workspace: domain::WorkspaceId,
) -> Result<Option<String>, ApiError> {
    let broken: Vec<String> = state
        .connections
        .list(workspace)
        .await?
        .into_iter()
        .filter_map(|integration| {
            let explanation = domain::explain::explain(integration.status, None, &[]);
            explanation.needs_reconnect().then(|| {
                format!(
                    "{} ({})",
                    integration.email,
                    explanation.label.to_lowercase()
                )
            })
        })
        .collect();
    Ok(match broken.as_slice() {
        [] => None,
        [one] => Some(format!("A connection needs you: {one}.")),
        many => Some(format!(
            "{} connections need you: {}.",
            many.len(),
            many.join(", ")
        )),
    })
}

/// A form with an on/off switch (`enabled=on` or `off`).
#[derive(serde::Deserialize)]
pub(super) struct SwitchForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    enabled: String,
}

impl SwitchForm {
    pub(super) fn is_on(&self) -> bool {
        self.enabled == "on"
    }
}

impl SessionForm for SwitchForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}
