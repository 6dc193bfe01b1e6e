//! The HTTP surface: routers per area merged into one, each route documented
//! in the OpenAPI document (routes are registered through utoipa-axum, so an
//! undocumented route cannot be added by accident).

pub mod autodraft;
pub mod browser_errors;
pub mod identity;
pub mod integrations;
pub mod json;
pub mod mail_servers;
pub mod openapi;
pub mod ops;
pub mod outbox;
pub mod problem;
pub mod request_context;
pub mod security_headers;
pub mod webhooks;
pub mod workflows;

use std::sync::Arc;

use axum::Router;
use axum::middleware;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use problem::{ApiError, ErrorCode, FieldError, Problem};

use crate::app::AppState;

/// Largest request body accepted (JSON inputs and webhook payloads are small).
pub const BODY_LIMIT_BYTES: usize = 1024 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Mailwright API",
        description = "Self-hostable email automation. Errors are application/problem+json (RFC 9457) with a `code`."
    ),
    modifiers(&SecuritySchemes)
)]
struct ApiDoc;

/// The two ways to authenticate: a bearer credential (API key `mw_...` or a
/// JWT) or the UI's session cookie.
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A workspace API key (mw_...) or a JWT from the configured identity provider"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::cookies::SESSION,
                "The UI's session; unsafe methods also need the X-CSRF-Token header",
            ))),
        );
    }
}

/// Every route with its documentation, before state is attached.
pub fn documented_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(ops::router())
        .merge(identity::router())
        .merge(integrations::router())
        .merge(mail_servers::router())
        .merge(autodraft::router())
        .merge(outbox::router())
        .merge(workflows::router())
        .merge(webhooks::router())
        .merge(crate::ui::router())
}

/// The OpenAPI document of the API (as served at `/api/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut openapi = openapi::for_clients(documented_routes().into_openapi());
    openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
    openapi
}

/// The whole application router, with its middleware.
pub fn router(mut state: AppState) -> Router {
    let (mut routes, openapi) = documented_routes().split_for_parts();
    // The UI's pages are routes too; the document is the API's alone.
    let mut openapi = openapi::for_clients(openapi);
    if let Some(demo) = &state.demo {
        // Relative to its mount: OAuth at .../o/oauth2/v2/auth, Gmail at .../gmail/v1.
        // Its requests are logged and counted under its own route templates
        // (a nested service is not reached by the route layer below).
        let sandbox = demo
            .sandbox
            .router()
            .route_layer(middleware::from_fn(request_context::record_route));
        routes = routes.nest_service(crate::demo::SANDBOX_PATH, sandbox);
    }
    openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
    state.openapi_json = Arc::new(openapi.to_json().expect("the OpenAPI document serializes"));
    routes
        .route(
            security_headers::UI_SCRIPT_PATH,
            axum::routing::get(security_headers::ui_script),
        )
        .route_layer(middleware::from_fn(request_context::record_route))
        .fallback(|| async { ApiError::NotFound })
        .layer(CatchPanicLayer::custom(request_context::panic_response))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT_BYTES))
        .layer(middleware::from_fn(security_headers::add))
        .layer(middleware::from_fn(request_context::around_request))
        // Outermost: it sees every problem answer, the ones made from bare
        // framework errors included.
        .layer(middleware::from_fn(browser_errors::pages_for_browsers))
        .with_state(state)
}
