//! Workspace isolation across EVERY authenticated route, derived from the
//! OpenAPI document: a route added later is walked automatically, and this
//! test fails if it forgets to scope by workspace (or to document itself).

mod common;

use std::collections::BTreeMap;

use common::{Tenant, TestApp, spawn_app};
use serde_json::Value;

/// Routes under /api/ that are deliberately public (api.md, "Authentication").
const PUBLIC: &[&str] = &[
    "/api/health",
    "/api/ready",
    "/api/openapi.json",
    "/api/auth/oauth/google/callback",
    "/api/auth/oauth/microsoft/callback",
    "/api/hooks/{workflow_id}",
    "/api/push/gmail",
    // Graph proves itself per notification (the clientState), not per call.
    "/api/push/microsoft",
];

struct Operation {
    method: String,
    path: String,
    declares_security: bool,
}

async fn operations(app: &TestApp) -> Vec<Operation> {
    let document: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            found.push(Operation {
                method: method.to_uppercase(),
                path: path.clone(),
                declares_security: operation
                    .get("security")
                    .is_some_and(|security| !security.as_array().unwrap().is_empty()),
            });
        }
    }
    found
}

/// Workspace A's things that its tenant does not carry.
#[derive(Default)]
struct MoreOfA {
    webhook_endpoint: String,
    webhook_delivery: String,
}

/// Give A a webhook endpoint with one delivery.
async fn more_of_a(app: &TestApp, a: &Tenant) -> MoreOfA {
    let endpoint: Value = app
        .client
        .post(app.url("/api/webhook-endpoints"))
        .bearer_auth(&a.key)
        .json(&serde_json::json!({"url": "https://hooks.example.com/alpha", "events": ["workflow.run_succeeded"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let webhook_endpoint = endpoint["id"].as_str().expect("an endpoint").to_owned();
    app.store
        .queue_webhook_event(
            a.workspace,
            "workflow.run_succeeded",
            "msg_alpha",
            "{}",
            "webhook.deliver",
        )
        .await
        .unwrap();
    let deliveries: Value = app
        .get_as(
            &format!("/api/webhook-endpoints/{webhook_endpoint}/deliveries"),
            &a.key,
        )
        .await
        .json()
        .await
        .unwrap();
    MoreOfA {
        webhook_endpoint,
        webhook_delivery: deliveries["deliveries"][0]["id"]
            .as_str()
            .expect("a delivery")
            .to_owned(),
    }
}

/// Workspace A's id for each kind of path parameter. A new route with a
/// parameter this does not know fails the test until it is added here.
fn id_of_a(path: &str, parameter: &str, a: &Tenant, more: &MoreOfA) -> String {
    match (path, parameter) {
        (path, "id") if path.starts_with("/api/webhook-endpoints/") => {
            more.webhook_endpoint.clone()
        }
        (path, "delivery_id") if path.starts_with("/api/webhook-endpoints/") => {
            more.webhook_delivery.clone()
        }
        (path, "id") if path.starts_with("/api/api-keys/") => a.key_id.clone(),
        (path, "id") if path.starts_with("/api/integrations/") => a.integration_id.clone(),
        (path, "id") if path.starts_with("/api/workflows/") => a.workflow_id.clone(),
        (path, "id") if path.starts_with("/api/runs/") => a.run_id.clone(),
        _ => panic!(
            "the isolation matrix does not know how to make workspace A's `{parameter}` for {path}: add it to id_of_a"
        ),
    }
}

fn fill(path: &str, mut id_for: impl FnMut(&str) -> String) -> String {
    let mut filled = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').unwrap() + start;
        filled.push_str(&rest[..start]);
        filled.push_str(&id_for(&rest[start + 1..end]));
        rest = &rest[end + 1..];
    }
    filled.push_str(rest);
    filled
}

async fn call(app: &TestApp, method: &str, path: &str, bearer: Option<&str>) -> (u16, String) {
    let mut request = app.client.request(method.parse().unwrap(), app.url(path));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    if method != "GET" && method != "DELETE" {
        request = request.json(&serde_json::json!({}));
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn workspace_b_never_sees_or_touches_workspace_a() {
    let app = spawn_app().await;
    let a = app.tenant("alpha").await;
    let b = app.tenant("bravo").await;
    let more = more_of_a(&app, &a).await;
    let a_markers = [
        a.workspace.to_string(),
        a.user.to_string(),
        a.key_id.clone(),
        "alpha".to_owned(),
        a.key.clone(),
    ];

    let operations = operations(&app).await;
    let authenticated: Vec<&Operation> = operations
        .iter()
        .filter(|operation| {
            operation.path.starts_with("/api/") && !PUBLIC.contains(&operation.path.as_str())
        })
        .collect();
    assert!(
        authenticated.len() >= 4,
        "the walk covers the authenticated API: {}",
        authenticated.len()
    );

    let mut walked = BTreeMap::new();
    for operation in &authenticated {
        let (method, path) = (operation.method.as_str(), operation.path.as_str());
        assert!(
            operation.declares_security,
            "{method} {path} is authenticated but its OpenAPI entry declares no security"
        );

        // Without credentials: 401, never data.
        let (status, _) = call(
            &app,
            method,
            &fill(path, |parameter| id_of_a(path, parameter, &a, &more)),
            None,
        )
        .await;
        assert_eq!(status, 401, "{method} {path} without credentials");

        let (status, body) = call(
            &app,
            method,
            &fill(path, |parameter| id_of_a(path, parameter, &a, &more)),
            Some(&b.key),
        )
        .await;
        if path.contains('{') {
            // A's id, asked for by B, answers exactly as an id that does not exist.
            let (missing_status, missing_body) = call(
                &app,
                method,
                &fill(path, |_| uuid::Uuid::now_v7().to_string()),
                Some(&b.key),
            )
            .await;
            assert_eq!(status, 404, "{method} {path} with A's id as B: {body}");
            assert_eq!(
                (status, body.clone()),
                (missing_status, missing_body),
                "{method} {path}: foreign and missing ids answer alike"
            );
        }
        for marker in &a_markers {
            assert!(
                !body.contains(marker.as_str()),
                "{method} {path} as B shows A's {marker}: {body}"
            );
        }
        walked.insert(format!("{method} {path}"), status);
    }

    // A is untouched by everything B tried.
    assert_eq!(
        app.get_as("/api/me", &a.key).await.status(),
        200,
        "A's key still works: {walked:?}"
    );
    let a_keys: Value = app
        .get_as("/api/api-keys", &a.key)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        a_keys.to_string().contains(&a.key_id),
        "A's key is still listed"
    );
}

#[test]
fn the_matrix_refuses_routes_it_cannot_fill() {
    let tenant = Tenant {
        workspace: domain::WorkspaceId::new(),
        user: domain::UserId::new(),
        key_id: "k".into(),
        key: "mw_x".into(),
        integration_id: "i".into(),
        workflow_id: "w".into(),
        run_id: "r".into(),
    };
    let unknown = std::panic::catch_unwind(|| {
        fill("/api/widgets/{widget_id}", |parameter| {
            id_of_a(
                "/api/widgets/{widget_id}",
                parameter,
                &tenant,
                &MoreOfA::default(),
            )
        })
    });
    assert!(
        unknown.is_err(),
        "a new parameter kind must be added to the matrix, not skipped"
    );
    assert_eq!(
        fill("/api/api-keys/{id}", |parameter| id_of_a(
            "/api/api-keys/{id}",
            parameter,
            &tenant,
            &MoreOfA::default()
        )),
        "/api/api-keys/k"
    );
}
