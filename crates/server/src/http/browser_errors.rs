//! Errors a person sees in a browser are pages, not JSON. A request for a
//! page (not under `/api/`, not the sandbox's mount, `Accept` naming
//! `text/html`) whose answer is a problem document gets the same status as
//! an HTML page in the site's layout: what went wrong, in the problem's own
//! words, the request id of a server error, and a way back. API clients,
//! and anything that does not ask for HTML, keep problem+json.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;

use super::problem::PROBLEM_JSON;
use super::security_headers::PAGE_POLICY;

/// A problem document is small (a few hundred bytes); one over this would
/// be answered with its status and an empty body.
const MOST_PROBLEM_BYTES: usize = 64 * 1024;

fn wants_a_page(request: &Request) -> bool {
    let path = request.uri().path();
    let page_path = !path.starts_with("/api/")
        && path != "/api"
        && !path.starts_with(crate::demo::SANDBOX_PATH)
        && path != "/metrics";
    let html = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    page_path && html && matches!(*request.method(), Method::GET | Method::HEAD | Method::POST)
}

pub async fn pages_for_browsers(request: Request, next: Next) -> Response {
    let wants_page = wants_a_page(&request);
    let response = next.run(request).await;
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with(PROBLEM_JSON));
    if !wants_page || !is_problem {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MOST_PROBLEM_BYTES).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let problem: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let text = |name: &str| {
        problem
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let page = crate::ui::error_page(
        parts.status,
        text("title"),
        text("detail"),
        text("code"),
        problem.get("request_id").and_then(Value::as_str),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    parts.headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_POLICY),
    );
    Response::from_parts(parts, Body::from(page))
}
