//! Gmail's batch endpoint (`POST /batch/gmail/v1`, and `/batch`, which the
//! discovery document's `batchPath` names): a `multipart/mixed` body whose
//! parts are `application/http` requests, answered by a `multipart/mixed`
//! body of `application/http` responses in the same order, each part's
//! `Content-ID` being `<response-` + the request part's id + `>`. Each inner
//! request runs through the sandbox's own Gmail routes (its scopes, quota
//! and faults apply); an inner request without `Authorization` takes the
//! outer one. At most 100 requests, as Gmail's limit.
//!
//! Line endings: Python's `email` generator writes `\n`, Google writes
//! `\r\n`; both are read. Answers use `\r\n` (google-api-python-client finds
//! an inner body after `\r\n\r\n`).

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;

use crate::Sandbox;
use crate::google_error::ApiError;

/// Gmail's documented limit of requests per batch.
const MOST_PARTS: usize = 100;
/// An inner answer larger than this is cut off (the sandbox's own bodies
/// are far smaller).
const MOST_PART_BYTES: usize = 10 * 1024 * 1024;

/// One inner request.
struct Part {
    content_id: Option<String>,
    method: Method,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

pub(crate) async fn batch(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(boundary) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(multipart_boundary)
    else {
        return ApiError::InvalidArgument(
            "Content-Type must be multipart/mixed with a boundary".into(),
        )
        .into_response();
    };
    let text = String::from_utf8_lossy(&body);
    let parts = match parse_parts(&text, &boundary) {
        Ok(parts) => parts,
        Err(problem) => return ApiError::InvalidArgument(problem).into_response(),
    };
    if parts.len() > MOST_PARTS {
        return ApiError::InvalidArgument(format!(
            "Too many requests in batch: {} (the limit is {MOST_PARTS})",
            parts.len()
        ))
        .into_response();
    }
    let outer_auth = headers.get(header::AUTHORIZATION).cloned();
    let answer_boundary = format!(
        "batch_{}",
        crate::state::random_token(16).replace(['-', '_'], "x")
    );
    let mut answer = String::new();
    for part in parts {
        let (status, content_type, inner_body) =
            run_part(&sandbox, part_request(&part, outer_auth.as_ref())).await;
        answer.push_str(&format!(
            "--{answer_boundary}\r\nContent-Type: application/http\r\n"
        ));
        if let Some(id) = &part.content_id {
            answer.push_str(&format!("Content-ID: <response-{id}>\r\n"));
        }
        answer.push_str(&format!(
            "\r\nHTTP/1.1 {} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{inner_body}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            inner_body.len(),
        ));
    }
    answer.push_str(&format!("--{answer_boundary}--\r\n"));
    let mut response = (StatusCode::OK, answer).into_response();
    if let Ok(value) =
        HeaderValue::from_str(&format!("multipart/mixed; boundary={answer_boundary}"))
    {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

fn part_request(part: &Part, outer_auth: Option<&HeaderValue>) -> Result<Request<Body>, ApiError> {
    // Only Gmail's own methods, by path (no batch inside a batch).
    let path = part.target.split('?').next().unwrap_or_default();
    if !path.starts_with("/gmail/v1/") {
        return Err(ApiError::NotFound);
    }
    let mut request = Request::builder()
        .method(part.method.clone())
        .uri(&part.target);
    let mut has_auth = false;
    for (name, value) in &part.headers {
        if name.eq_ignore_ascii_case("host") || name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        has_auth |= name.eq_ignore_ascii_case("authorization");
        request = request.header(name.as_str(), value.as_str());
    }
    if !has_auth && let Some(auth) = outer_auth {
        request = request.header(header::AUTHORIZATION, auth.clone());
    }
    request
        .body(Body::from(part.body.clone()))
        .map_err(|_| ApiError::InvalidArgument("A batch part is not a valid HTTP request".into()))
}

async fn run_part(
    sandbox: &Sandbox,
    request: Result<Request<Body>, ApiError>,
) -> (StatusCode, String, String) {
    let response = match request {
        Ok(request) => match super::routes()
            .with_state(sandbox.clone())
            .oneshot(request)
            .await
        {
            Ok(response) => response,
            Err(never) => match never {},
        },
        Err(error) => error.into_response(),
    };
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("application/json; charset=UTF-8")
        .to_owned();
    let body = axum::body::to_bytes(response.into_body(), MOST_PART_BYTES)
        .await
        .unwrap_or_default();
    (
        status,
        content_type,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// The `boundary` parameter of a `multipart/mixed` content type.
fn multipart_boundary(content_type: &str) -> Option<String> {
    let mut pieces = content_type.split(';');
    if !pieces
        .next()?
        .trim()
        .eq_ignore_ascii_case("multipart/mixed")
    {
        return None;
    }
    pieces.find_map(|piece| {
        let (name, value) = piece.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_owned())
            .filter(|boundary| !boundary.is_empty())
    })
}

/// Split a header block from what follows its blank line.
fn split_head(text: &str) -> (&str, &str) {
    let crlf = text.find("\r\n\r\n").map(|at| (at, 4));
    let lf = text.find("\n\n").map(|at| (at, 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => {
            let (at, len) = if a.0 <= b.0 { a } else { b };
            (&text[..at], &text[at + len..])
        }
        (Some((at, len)), None) | (None, Some((at, len))) => (&text[..at], &text[at + len..]),
        (None, None) => (text, ""),
    }
}

fn header_lines(head: &str) -> Vec<(String, String)> {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

fn parse_parts(text: &str, boundary: &str) -> Result<Vec<Part>, String> {
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    for chunk in text.split(delimiter.as_str()).skip(1) {
        if chunk.starts_with("--") {
            break;
        }
        let chunk = chunk.trim_start_matches(['\r', '\n']);
        let (outer_head, inner) = split_head(chunk);
        let content_id = header_lines(outer_head)
            .into_iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-id"))
            .map(|(_, value)| value.trim_matches(['<', '>']).to_owned());
        let (inner_head, body) = split_head(inner);
        let mut lines = inner_head.lines();
        let request_line = lines.next().unwrap_or_default().trim();
        let mut words = request_line.split_whitespace();
        let (Some(method), Some(target)) = (words.next(), words.next()) else {
            return Err(format!(
                "A batch part has no request line: `{request_line}`"
            ));
        };
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| format!("A batch part has an unknown method `{method}`"))?;
        // An absolute URL names the same server: keep the path and query.
        let target = match target.split_once("://") {
            Some((_, rest)) => rest.find('/').map_or("/", |at| &rest[at..]).to_owned(),
            None => target.to_owned(),
        };
        let headers = header_lines(&lines.collect::<Vec<_>>().join("\n"));
        let body = body.trim_end_matches(['\r', '\n']).as_bytes().to_vec();
        parts.push(Part {
            content_id,
            method,
            target,
            headers,
            body,
        });
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_written_by_pythons_email_generator_are_read() {
        let body = "--===============1==\nContent-Type: application/http\nMIME-Version: 1.0\n\
            Content-Transfer-Encoding: binary\nContent-ID: <abc + 1>\n\n\
            GET /gmail/v1/users/me/messages/m1?format=minimal&alt=json HTTP/1.1\n\
            Content-Type: application/json\nMIME-Version: 1.0\naccept: application/json\n\
            authorization: Bearer t\nHost: gmail.googleapis.com\n\n\n\
            --===============1==\nContent-Type: application/http\nContent-ID: <abc + 2>\n\n\
            POST /gmail/v1/users/me/drafts/send HTTP/1.1\nContent-Type: application/json\n\
            content-length: 12\n\n{\"id\": \"r1\"}\n--===============1==--\n";
        assert_eq!(
            multipart_boundary("multipart/mixed; boundary=\"===============1==\"").as_deref(),
            Some("===============1==")
        );
        let parts = parse_parts(body, "===============1==").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].content_id.as_deref(), Some("abc + 1"));
        assert_eq!(parts[0].method, Method::GET);
        assert_eq!(
            parts[0].target,
            "/gmail/v1/users/me/messages/m1?format=minimal&alt=json"
        );
        assert!(
            parts[0]
                .headers
                .iter()
                .any(|(n, v)| n == "authorization" && v == "Bearer t")
        );
        assert!(parts[0].body.is_empty());
        assert_eq!(parts[1].method, Method::POST);
        assert_eq!(parts[1].body, b"{\"id\": \"r1\"}");
    }
}
