//! What wraps every request: a request id (from a well-formed `x-request-id`
//! header, or fresh), a log span carrying it, one log line per answer, HTTP
//! metrics by route, the time limit, and problem+json for any error answer
//! that was produced without a body of ours.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::problem::{ApiError, Problem};
use crate::telemetry::{HTTP_REQUEST_DURATION, HTTP_REQUESTS};

pub static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest a request may run. Above the 30 s that `execute?wait=true` may
/// wait, so that endpoint times out on its own terms first.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the router reports which route template a request matched.
#[derive(Clone, Default)]
struct MatchedRouteSlot(Arc<OnceLock<String>>);

/// Route layer (runs after routing): report the matched route template.
pub async fn record_route(request: Request, next: Next) -> Response {
    if let (Some(slot), Some(path)) = (
        request.extensions().get::<MatchedRouteSlot>(),
        request.extensions().get::<MatchedPath>(),
    ) {
        let _ = slot.0.set(path.as_str().to_owned());
    }
    next.run(request).await
}

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// A caller's id is kept when it is short and plain, so ids can be followed
/// across services; anything else is replaced rather than logged.
fn well_formed(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-_.:".contains(&byte))
}

/// The method as a metric label: the standard ones by name, anything else
/// (a client may send any token as a method) as `other`, so strangers
/// cannot add series without bound.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

pub async fn around_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| well_formed(id))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = method_label(request.method());
    // Routing happens inside; `record_route` reports the matched template back.
    let matched_route = MatchedRouteSlot::default();
    let mut request = request;
    request.extensions_mut().insert(matched_route.clone());
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        route = tracing::field::Empty
    );
    let handle = async move {
        let response = match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
            Ok(response) => response,
            Err(_) => ApiError::Timeout.into_response(),
        };
        let mut response = problem_for_bare_error(response).await;
        let status = response.status();
        // Only the route template is recorded: concrete paths hold ids, and
        // query strings can hold tokens (OAuth codes, webhook secrets).
        let route = matched_route
            .0
            .get()
            .cloned()
            .unwrap_or_else(|| "unmatched".to_owned());
        tracing::Span::current().record("route", route.as_str());
        let elapsed = started.elapsed();
        tracing::info!(
            status = status.as_u16(),
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "answered"
        );
        let labels = [
            ("method", method.to_owned()),
            ("route", route),
            ("status", status.as_u16().to_string()),
        ];
        metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
        metrics::histogram!(HTTP_REQUEST_DURATION, &labels).record(elapsed.as_secs_f64());
        if let Ok(value) = HeaderValue::from_str(&REQUEST_ID.with(Clone::clone)) {
            response
                .headers_mut()
                .insert(REQUEST_ID_HEADER.clone(), value);
        }
        response
    };
    REQUEST_ID.scope(request_id, handle.instrument(span)).await
}

/// Error answers made by the framework (unknown route, wrong method, body
/// too large, rejected JSON) become problem documents like ours.
async fn problem_for_bare_error(response: Response) -> Response {
    let status = response.status();
    // Only bodiless or plain-text answers are the framework's; JSON (problem
    // or not) and HTML pages (the UI's own error pages) are ours already.
    let framework_made = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|value| value.as_bytes().starts_with(b"text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !framework_made {
        return response;
    }
    let (parts, body) = response.into_parts();
    let hint = if status.is_client_error() {
        axum::body::to_bytes(body, 4096)
            .await
            .ok()
            .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
            .map(|text| text.trim().to_owned())
            .filter(|text| !text.is_empty())
    } else {
        drop(body);
        None
    };
    let mut rebuilt = Problem::for_status(status, hint).into_response();
    // Keep headers that still mean something, such as `Allow` on a 405.
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rebuilt.headers_mut().entry(name).or_insert(value.clone());
        }
    }
    rebuilt
}

/// A handler that panicked: logged (inside the request's span), answered 500.
pub fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    tracing::error!("request handler panicked");
    Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR, None).into_response()
}
