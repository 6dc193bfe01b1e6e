//! The OpenAPI document clients get at `/api/openapi.json`, made from what
//! the route annotations generate, in one place:
//!
//! - the API alone: paths under `/api/`, plus `/health` and `/metrics`
//!   (the UI's HTML pages are routes too, but not API);
//! - every response has a description;
//! - the error answers each operation can really give, all described by one
//!   shared [`PROBLEM`] schema (`application/problem+json`): 401 where
//!   credentials are needed, 403 where a session's CSRF check applies, 413
//!   and 422 where a JSON body is read, 400 where a body, path or query
//!   string can be unreadable, 404 where the path names a resource, 503
//!   where the database or an outside service is used;
//! - optional parameters and bodies that are absent, not `null`;
//! - links from what creates a resource to what reads it;
//! - only the schemas and tags the remaining operations use.
//!
//! One operation of the API is rate limited, connecting an IMAP mailbox
//! (each try makes outbound connections): only it documents a 429 (the UI's
//! sign-in and setup forms are limited too, and are not in the document).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::Response;
use utoipa::openapi::tag::Tag;
use utoipa::openapi::{OpenApi, RefOr, Required};

use super::problem::PROBLEM_JSON;
use super::workflows::RunView;

/// The name of the one error schema in `components.schemas`.
pub const PROBLEM: &str = "Problem";

/// Operations that touch neither the database nor an outside service, so
/// they cannot be unavailable (503) while the process answers.
const SELF_CONTAINED: &[&str] = &["/health", "/api/health", "/metrics", "/api/openapi.json"];

/// Operations that read their JSON body leniently: whatever it holds, they
/// answer as documented (Gmail's push: an unreadable notification is logged
/// and acknowledged, so Pub/Sub does not redeliver it).
const LENIENT_BODY: &[&str] = &["/api/push/gmail"];

/// What each tag groups.
const TAGS: &[(&str, &str)] = &[
    ("identity", "Who is calling, and the workspace's API keys"),
    (
        "integrations",
        "Connected mailboxes (Gmail, Outlook, IMAP) and Google Calendar: connect, status, reconnect, disconnect",
    ),
    (
        "auto-draft",
        "Reply drafts written into connected mailboxes, and the push endpoints of Gmail and Microsoft Graph",
    ),
    ("workflows", "Workflows, their runs, and webhook triggers"),
    ("system email", "The outbox of Mailwright's own email"),
    (
        "operations",
        "Liveness, readiness, metrics and this document",
    ),
];

/// How answers lead to other operations (OpenAPI links, named after their
/// target): (path, method, status, where the target's `id` is in this
/// answer, the targets' operationIds).
type Link = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);
const LINKS: &[Link] = &[
    (
        "/api/workflows",
        "post",
        "201",
        "$response.body#/id",
        &[
            "get_workflow",
            "replace_workflow",
            "delete_workflow",
            "execute_workflow",
            "list_runs",
        ],
    ),
    (
        "/api/workflows/{id}/execute",
        "post",
        "200",
        "$response.body#/run/id",
        &["get_run"],
    ),
    (
        "/api/workflows/{id}/execute",
        "post",
        "202",
        "$response.body#/run/id",
        &["get_run"],
    ),
    (
        "/api/api-keys",
        "post",
        "201",
        "$response.body#/id",
        &["revoke_api_key"],
    ),
];

/// `POST /api/workflows/{id}/execute` once the run ended.
#[derive(ToSchema)]
#[allow(dead_code)] // documentation only: the handler answers with JSON built in place
pub struct ExecuteResult {
    /// Whether the run succeeded.
    success: bool,
    run: RunView,
    /// When it failed: `{"code", "message"}`.
    #[schema(value_type = Option<Object>)]
    error: Option<Value>,
}

/// `POST /api/workflows/{id}/execute` while the run is queued or running.
#[derive(ToSchema)]
#[allow(dead_code)] // documentation only
pub struct ExecuteAccepted {
    run: RunView,
}

/// `POST /api/hooks/{workflow_id}`: the run started.
#[derive(ToSchema)]
#[allow(dead_code)] // documentation only
pub struct WebhookAccepted {
    run_id: String,
}

/// `POST /api/push/gmail`: how many mailboxes a sync was queued for.
#[derive(ToSchema)]
#[allow(dead_code)] // documentation only
pub struct PushAccepted {
    mailboxes: u64,
}

/// Whether `path` belongs in the API document.
pub fn is_api_path(path: &str) -> bool {
    path.starts_with("/api/") || path == "/health" || path == "/metrics"
}

/// The document for API clients, from the one the annotations generate.
pub fn for_clients(mut openapi: OpenApi) -> OpenApi {
    openapi.paths.paths.retain(|path, _| is_api_path(path));
    for (path, item) in openapi.paths.paths.iter_mut() {
        for (method, operation) in operations(item) {
            complete(path, method, operation);
        }
    }
    add_links(&mut openapi);
    let components = openapi.components.get_or_insert_with(Default::default);
    components
        .schemas
        .insert(PROBLEM.to_owned(), from_json(problem_schema()));
    prune_schemas(&mut openapi);
    openapi.tags = Some(used_tags(&openapi));
    openapi
}

fn add_links(openapi: &mut OpenApi) {
    for (path, method, status, id, targets) in LINKS {
        let Some(item) = openapi.paths.paths.get_mut(*path) else {
            continue;
        };
        for (_, operation) in operations(item)
            .into_iter()
            .filter(|(each, _)| each == method)
        {
            let Some(RefOr::T(response)) = operation.responses.responses.get_mut(*status) else {
                continue;
            };
            for target in *targets {
                response.links.insert(
                    (*target).to_owned(),
                    from_json(json!({"operationId": target, "parameters": {"id": id}})),
                );
            }
        }
    }
}

/// Every operation of a path item, with its method.
fn operations(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("get", item.get.as_mut()),
        ("put", item.put.as_mut()),
        ("post", item.post.as_mut()),
        ("delete", item.delete.as_mut()),
        ("options", item.options.as_mut()),
        ("head", item.head.as_mut()),
        ("patch", item.patch.as_mut()),
        ("trace", item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|operation| (method, operation)))
    .collect()
}

/// Whether the operation demands credentials (its security requirements
/// name at least one scheme; an empty requirement would make them optional).
fn needs_credentials(operation: &Operation) -> bool {
    operation.security.as_ref().is_some_and(|requirements| {
        !requirements.is_empty()
            && requirements.iter().all(|requirement| {
                serde_json::to_value(requirement)
                    .ok()
                    .and_then(|value| value.as_object().map(|names| !names.is_empty()))
                    .unwrap_or(false)
            })
    })
}

fn has_json_body(operation: &Operation) -> bool {
    operation
        .request_body
        .as_ref()
        .is_some_and(|body| match body {
            RefOr::Ref(_) => true,
            RefOr::T(body) => body
                .content
                .keys()
                .any(|content_type| content_type.contains("json")),
        })
}

/// An optional body (`Option<T>` in an annotation) is generated as "T or
/// null"; but absent is what is optional, and a JSON `null` is refused like
/// any other wrong value. Keep T alone (the body stays not required).
fn optional_body_without_null(operation: &mut Operation) {
    let Some(RefOr::T(body)) = operation.request_body.as_mut() else {
        return;
    };
    for content in body.content.values_mut() {
        let RefOr::T(content) = content else {
            continue;
        };
        let Some(schema) = content.schema.as_ref() else {
            continue;
        };
        let schema = serde_json::to_value(schema).unwrap_or_default();
        let Some(alternatives) = schema.get("oneOf").and_then(Value::as_array) else {
            continue;
        };
        let not_null: Vec<&Value> = alternatives
            .iter()
            .filter(|alternative| alternative.get("type") != Some(&json!("null")))
            .collect();
        if let [only] = not_null.as_slice()
            && alternatives.len() == 2
        {
            content.schema = Some(from_json((*only).clone()));
        }
    }
}

/// An optional parameter (`Option<T>`) is generated as "T or null"; but
/// absent is what is optional: a query string or header cannot hold a JSON
/// `null`. Keep T alone (the parameter stays not required).
fn optional_parameters_without_null(operation: &mut Operation) {
    for parameter in operation.parameters.iter_mut().flatten() {
        let RefOr::T(parameter) = parameter else {
            continue;
        };
        if matches!(parameter.required, Required::True) {
            continue;
        }
        let Some(schema) = parameter.schema.as_ref() else {
            continue;
        };
        let mut schema = serde_json::to_value(schema).unwrap_or_default();
        let Some(types) = schema.get_mut("type").and_then(Value::as_array_mut) else {
            continue;
        };
        types.retain(|kind| kind != "null");
        if let [only] = types.as_slice() {
            schema["type"] = only.clone();
        }
        parameter.schema = Some(from_json(schema));
    }
}

/// Fill in what one operation's responses lack.
fn complete(path: &str, method: &str, operation: &mut Operation) {
    optional_body_without_null(operation);
    optional_parameters_without_null(operation);
    let credentials = needs_credentials(operation);
    let json_body = has_json_body(operation);
    let lenient = LENIENT_BODY.contains(&path);
    let has_parameters = operation
        .parameters
        .as_ref()
        .is_some_and(|parameters| !parameters.is_empty());
    let names_a_resource = path.contains('{');
    let unsafe_method = !matches!(method, "get" | "head" | "options");

    let mut errors: Vec<u16> = Vec::new();
    if (json_body && !lenient) || has_parameters {
        errors.push(400);
    }
    if credentials {
        errors.push(401);
        if unsafe_method {
            errors.push(403);
        }
    }
    if names_a_resource {
        errors.push(404);
    }
    if json_body {
        errors.push(413);
        if !lenient {
            errors.push(422);
        }
    }
    if !SELF_CONTAINED.contains(&path) {
        errors.push(503);
    }

    let responses = &mut operation.responses.responses;
    for status in errors {
        responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::T(Response::new("")));
    }
    for (status, response) in responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        let code: u16 = status.parse().unwrap_or(0);
        if response.description.trim().is_empty() {
            response.description = default_description(code, method, credentials);
        }
        if code >= 400 {
            // Whatever the annotation said about the body: it is a problem.
            *response = from_json(problem_response(code, &response.description));
        } else if (300..400).contains(&code) && !response.headers.contains_key("Location") {
            response.headers.insert(
                "Location".to_owned(),
                from_json(json!({
                    "description": "Where to go next",
                    "schema": {"type": "string"}
                })),
            );
        }
    }
}

/// The description of a response whose annotation gave none.
fn default_description(status: u16, method: &str, credentials: bool) -> String {
    match status {
        200 => "OK".into(),
        201 => "Created".into(),
        202 => "Accepted: the work is queued".into(),
        204 => match method {
            "delete" => "Deleted".into(),
            _ => "Done; no content".into(),
        },
        302 => "Redirect: see Location".into(),
        400 => "The request cannot be read: a body that is not JSON, or a malformed path or \
                query string (code `validation_failed`)"
            .into(),
        401 if credentials => "No credentials, or refused ones (code `unauthorized`; `reason` \
                               says which check failed: `missing_credentials`, \
                               `unknown_api_key`, `expired`, ...)"
            .into(),
        401 => "The token is missing or wrong (code `unauthorized`)".into(),
        403 => "Signed in with the session cookie but without the session's X-CSRF-Token \
                header (code `forbidden`)"
            .into(),
        404 => "Not found: no such resource in this workspace (one of another workspace, or a \
                malformed id, answers the same; code `not_found`)"
            .into(),
        409 => "Conflicts with the current state (code `conflict`)".into(),
        413 => "The body is larger than the 1 MiB this service accepts (code \
                `validation_failed`)"
            .into(),
        422 => "Invalid input: `errors` names each wrong field and what is wrong with it (code \
                `validation_failed`)"
            .into(),
        502 => "The provider refused the request (code `provider_error`)".into(),
        503 => "Unavailable right now: the database or an outside service it needs is not \
                answering, or the request ran past its time limit; retry later (the answer \
                carries a `request_id`)"
            .into(),
        other => axum::http::StatusCode::from_u16(other)
            .ok()
            .and_then(|status| status.canonical_reason())
            .unwrap_or("Answer")
            .into(),
    }
}

/// An error answer: the shared problem schema, and for 401 the challenge.
fn problem_response(status: u16, description: &str) -> Value {
    let mut response = json!({
        "description": description,
        "content": {
            PROBLEM_JSON: {"schema": {"$ref": format!("#/components/schemas/{PROBLEM}")}}
        }
    });
    if status == 401 {
        response["headers"] = json!({
            "WWW-Authenticate": {
                "description": "`Bearer realm=\"mailwright\"`",
                "schema": {"type": "string"}
            }
        });
    }
    response
}

/// RFC 9457 problem details with this API's `code` and extra members.
fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "An error (RFC 9457 problem details). `code` is machine-readable; \
                        `detail` is written for a person.",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string", "description": "`/runbook#<code>`: the runbook entry for the code on this server (a relative reference)"},
            "title": {"type": "string"},
            "status": {"type": "integer", "description": "The HTTP status"},
            "detail": {"type": "string"},
            "code": {
                "type": "string",
                "enum": super::problem::ErrorCode::ALL.iter().map(|code| code.as_str()).collect::<Vec<_>>()
            },
            "errors": {
                "type": "array",
                "description": "With `validation_failed`, and with a mail server's refusal (`auth_failed`, `tls_failed`, `unreachable`, `no_drafts_folder`): each wrong field and why",
                "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": {
                        "field": {"type": "string"},
                        "message": {"type": "string"}
                    }
                }
            },
            "reason": {
                "type": "string",
                "description": "With `unauthorized`: which check failed"
            },
            "missing_scopes": {
                "type": "array",
                "items": {"type": "string"},
                "description": "With `missing_scopes`: the permissions the connection lacks"
            },
            "reconnect_url": {
                "type": "string",
                "description": "With `missing_scopes` and `needs_reauth`: where a person repairs the connection"
            },
            "request_id": {
                "type": "string",
                "description": "On 5xx answers: the id the server's log line carries too"
            }
        }
    })
}

fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("a well-formed OpenAPI object")
}

/// Drop the component schemas no remaining operation uses (directly or
/// through other schemas).
fn prune_schemas(openapi: &mut OpenApi) {
    let Some(components) = openapi.components.as_mut() else {
        return;
    };
    let mut used = BTreeSet::new();
    let mut pending: Vec<String> = Vec::new();
    collect_refs(
        &serde_json::to_value(&openapi.paths).unwrap_or_default(),
        &mut pending,
    );
    while let Some(name) = pending.pop() {
        if !used.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = components.schemas.get(&name) {
            collect_refs(
                &serde_json::to_value(schema).unwrap_or_default(),
                &mut pending,
            );
        }
    }
    components.schemas.retain(|name, _| used.contains(name));
}

fn collect_refs(value: &Value, names: &mut Vec<String>) {
    match value {
        Value::Object(members) => {
            for (key, member) in members {
                match (key.as_str(), member) {
                    ("$ref", Value::String(target)) => {
                        if let Some(name) = target.strip_prefix("#/components/schemas/") {
                            names.push(name.to_owned());
                        }
                    }
                    _ => collect_refs(member, names),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, names)),
        _ => {}
    }
}

/// The tags the remaining operations carry, described, in a stable order.
fn used_tags(openapi: &OpenApi) -> Vec<Tag> {
    let mut used: BTreeMap<String, ()> = BTreeMap::new();
    for item in openapi.paths.paths.values() {
        let mut item = item.clone();
        for (_, operation) in operations(&mut item) {
            for tag in operation.tags.iter().flatten() {
                used.insert(tag.clone(), ());
            }
        }
    }
    let mut tags: Vec<Tag> = TAGS
        .iter()
        .filter(|(name, _)| used.contains_key(*name))
        .map(|(name, description)| from_json(json!({"name": name, "description": description})))
        .collect();
    for name in used.keys() {
        if !TAGS.iter().any(|(known, _)| known == name) {
            tags.push(from_json(json!({"name": name})));
        }
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> Value {
        serde_json::to_value(super::super::openapi()).unwrap()
    }

    fn operations_of(document: &Value) -> Vec<(String, String, Value)> {
        let mut all = Vec::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                all.push((path.clone(), method.clone(), operation.clone()));
            }
        }
        all
    }

    #[test]
    fn only_the_api_is_documented() {
        let document = document();
        for (path, _, operation) in operations_of(&document) {
            assert!(is_api_path(&path), "{path} is not API");
            assert_ne!(operation["tags"][0], "ui", "{path}");
        }
        let tags: Vec<&str> = document["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|tag| tag["name"].as_str().unwrap())
            .collect();
        assert!(!tags.contains(&"ui"), "{tags:?}");
        assert!(document["paths"]["/api/me"].is_object());
        assert!(document["paths"]["/"].is_null());
    }

    #[test]
    fn every_response_is_described_and_every_error_is_a_problem() {
        let document = document();
        let problem = format!("#/components/schemas/{PROBLEM}");
        let mut ids = BTreeSet::new();
        for (path, method, operation) in operations_of(&document) {
            let id = operation["operationId"].as_str().unwrap().to_owned();
            assert!(ids.insert(id.clone()), "operationId {id} is used twice");
            for (status, response) in operation["responses"].as_object().unwrap() {
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|text| !text.is_empty()),
                    "{method} {path} {status}"
                );
                if status.as_str() >= "400" {
                    let content = response["content"].as_object().unwrap();
                    assert_eq!(content.len(), 1, "{method} {path} {status}");
                    assert_eq!(
                        content[PROBLEM_JSON]["schema"]["$ref"], problem,
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }

    #[test]
    fn errors_follow_what_each_operation_does() {
        let document = document();
        let statuses = |path: &str, method: &str| -> Vec<String> {
            document["paths"][path][method]["responses"]
                .as_object()
                .unwrap_or_else(|| panic!("{method} {path}"))
                .keys()
                .cloned()
                .collect()
        };
        let public = [
            ("/health", "get"),
            ("/metrics", "get"),
            ("/api/health", "get"),
            ("/api/ready", "get"),
            ("/api/openapi.json", "get"),
            ("/api/auth/oauth/google/callback", "get"),
            ("/api/auth/oauth/microsoft/callback", "get"),
            ("/api/hooks/{workflow_id}", "post"),
            ("/api/push/microsoft", "post"),
        ];
        for (path, method, _) in operations_of(&document) {
            let answers = statuses(&path, &method);
            let is_public =
                public.contains(&(path.as_str(), method.as_str())) || path == "/api/push/gmail";
            assert_eq!(
                answers.contains(&"401".to_owned()),
                !public.contains(&(path.as_str(), method.as_str())),
                "{method} {path}: {answers:?}"
            );
            assert_eq!(
                answers.contains(&"404".to_owned()),
                path.contains('{'),
                "{method} {path}: {answers:?}"
            );
            assert_eq!(
                answers.contains(&"403".to_owned()),
                !is_public && method != "get",
                "{method} {path}: {answers:?}"
            );
            assert_eq!(
                answers.contains(&"429".to_owned()),
                path == "/api/integrations/imap",
                "{method} {path}"
            );
        }
        for (path, method) in [
            ("/api/api-keys", "post"),
            ("/api/workflows", "post"),
            ("/api/workflows/{id}", "put"),
            ("/api/workflows/{id}/execute", "post"),
            ("/api/integrations/{id}/auto-draft", "put"),
        ] {
            let answers = statuses(path, method);
            for status in ["400", "413", "422"] {
                assert!(
                    answers.contains(&status.to_owned()),
                    "{method} {path}: {answers:?}"
                );
            }
        }
        assert!(statuses("/api/ready", "get").contains(&"503".to_owned()));
        assert!(!statuses("/health", "get").contains(&"503".to_owned()));
        let me = statuses("/api/me", "get");
        assert!(!me.contains(&"400".to_owned()) && !me.contains(&"422".to_owned()));
    }

    #[test]
    fn parameters_are_where_they_are_read_and_optional_bodies_are_not_null() {
        let document = document();
        for (path, method, operation) in operations_of(&document) {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let name = parameter["name"].as_str().unwrap();
                assert_eq!(
                    parameter["in"] == "path",
                    path.contains(&format!("{{{name}}}")),
                    "{method} {path}: {parameter}"
                );
            }
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let text = parameter.to_string();
                assert!(!text.contains(r#""null""#), "{method} {path}: {text}");
            }
            let body = &operation["requestBody"];
            if body.is_object() && body["required"] != true {
                let text = body.to_string();
                assert!(
                    !text.contains(r#""type":"null""#),
                    "{method} {path}: {text}"
                );
            }
        }
        let execute = &document["paths"]["/api/workflows/{id}/execute"]["post"];
        assert_eq!(
            execute["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ExecuteBody"
        );
    }

    #[test]
    fn links_lead_to_operations_that_exist() {
        let document = document();
        let ids: BTreeSet<String> = operations_of(&document)
            .into_iter()
            .map(|(_, _, operation)| operation["operationId"].as_str().unwrap().to_owned())
            .collect();
        let mut links = 0;
        for (path, method, operation) in operations_of(&document) {
            for (status, response) in operation["responses"].as_object().unwrap() {
                for link in response["links"]
                    .as_object()
                    .into_iter()
                    .flat_map(|l| l.values())
                {
                    links += 1;
                    let target = link["operationId"].as_str().unwrap();
                    assert!(ids.contains(target), "{method} {path} {status}: {target}");
                }
            }
        }
        let expected: usize = LINKS.iter().map(|(.., targets)| targets.len()).sum();
        assert_eq!(links, expected);
    }

    #[test]
    fn unused_schemas_are_dropped_and_used_ones_kept() {
        let document = document();
        let schemas = document["components"]["schemas"].as_object().unwrap();
        for name in [PROBLEM, "Me", "WorkflowView", "RunView", "ExecuteResult"] {
            assert!(schemas.contains_key(name), "{name} missing");
        }
        let text = serde_json::to_string(&document["paths"]).unwrap();
        for name in schemas.keys() {
            let reference = format!("\"#/components/schemas/{name}\"");
            let used_by_schemas = serde_json::to_string(&document["components"])
                .unwrap()
                .contains(&reference);
            assert!(
                text.contains(&reference) || used_by_schemas,
                "{name} is unused"
            );
        }
    }
}
