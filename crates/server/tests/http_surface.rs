//! The operations endpoints and the error contract, against the real server.

mod common;

use common::{assert_problem, spawn_app};
use serde_json::Value;

#[tokio::test]
async fn health_answers_on_both_paths_with_the_version() {
    let app = spawn_app().await;
    for path in ["/health", "/api/health"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            serde_json::json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})
        );
    }
}

#[tokio::test]
async fn ready_when_the_database_answers_and_is_migrated() {
    let app = spawn_app().await;
    let response = app.get("/api/ready").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        serde_json::json!({"status": "ready"})
    );
}

#[tokio::test]
async fn not_ready_while_migrations_are_pending_but_still_alive() {
    let app = spawn_app().await;
    assert_eq!(app.get("/api/ready").await.status(), 200, "ready before");
    store::testing::forget_latest_migration(&app.store).await;
    let problem = assert_problem(app.get("/api/ready").await, 503, "internal").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("mailwright migrate"),
        "{problem}"
    );
    assert_eq!(app.get("/health").await.status(), 200);
}

#[tokio::test]
async fn not_ready_when_the_database_is_gone_and_the_answer_says_so_without_internals() {
    let app = spawn_app().await;
    // The pool the server uses is shut: every query now fails as when the
    // database server is down.
    app.store.close().await;

    let response = app.get("/api/ready").await;
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let problem = assert_problem(response, 503, "internal").await;
    assert_eq!(problem["detail"], "The database is unreachable.");
    assert_eq!(
        problem["request_id"],
        request_id.as_str(),
        "5xx answers carry the request id of the log line"
    );
    let text = problem.to_string().to_lowercase();
    for leak in ["sqlx", "pool", "select", "postgres", "sqlite"] {
        assert!(!text.contains(leak), "{leak} leaked: {problem}");
    }
    assert_eq!(
        app.get("/health").await.status(),
        200,
        "liveness does not depend on the database"
    );
    assert_eq!(app.get("/api/health").await.status(), 200);
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_problems() {
    let app = spawn_app().await;
    assert_problem(app.get("/api/nothing-here").await, 404, "not_found").await;
    assert_problem(app.get("/no-such-page").await, 404, "not_found").await;

    let response = app
        .client
        .delete(app.url("/api/health"))
        .send()
        .await
        .unwrap();
    assert!(
        response.headers().get("allow").is_some(),
        "the Allow header survives"
    );
    assert_problem(response, 405, "not_found").await;
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_a_problem_naming_the_body() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/health"))
        .header("content-type", "application/json")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    let problem = assert_problem(response, 413, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "body");
}

/// A body sent in chunks (no length given) hits the limit while it is read:
/// the same 413 as a body whose length says it is too big.
#[tokio::test]
async fn an_oversized_chunked_body_is_the_same_413() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = common::google::world().await;
    let mut stream = tokio::net::TcpStream::connect(app.app.address.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST /api/workflows HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.tenant.key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..40 {
        let sent = async {
            stream
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            stream.write_all(&chunk).await?;
            stream.write_all(b"\r\n").await
        };
        // The server may answer and close before the last chunk.
        if sent.await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains("\"field\":\"body\""), "{answer}");
}

#[tokio::test]
async fn request_ids_are_kept_when_well_formed_and_replaced_otherwise() {
    let app = spawn_app().await;
    let fresh = app.get("/health").await;
    let generated = fresh.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");

    let kept = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "trace-abc.123")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "trace-abc.123");

    let hostile = "x".repeat(65);
    let replaced = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", &hostile)
        .send()
        .await
        .unwrap();
    assert_ne!(
        replaced.headers()["x-request-id"].to_str().unwrap(),
        hostile
    );
}

/// Series of the HTTP metrics: one line each in the exposition.
async fn http_series(app: &common::TestApp) -> usize {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .filter(|line| line.starts_with("mailwright_http_"))
        .count()
}

/// A stranger sending made-up methods and paths cannot grow `/metrics`:
/// unknown methods are `other`, unknown routes `unmatched`.
#[tokio::test]
async fn random_methods_and_paths_leave_the_metric_series_count_unchanged() {
    let app = spawn_app().await;
    let send = |method: String, path: String| {
        let request = app.client.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            app.url(&path),
        );
        async move { request.send().await.unwrap().status() }
    };
    // One of each kind first: the series these requests fall into.
    for path in ["/api/me", "/no-such-page"] {
        send("BREW".into(), path.into()).await;
        send("GET".into(), path.into()).await;
    }
    http_series(&app).await; // `/metrics` counts itself after answering.
    let before = http_series(&app).await;
    let mut requests = Vec::new();
    for n in 0..5_000u32 {
        let method: String = (0..8).map(|_| fastrand::uppercase()).collect();
        let path = if n % 2 == 0 {
            format!("/{}", uuid::Uuid::new_v4())
        } else {
            "/api/me".to_owned()
        };
        requests.push(send(method, path));
        if requests.len() == 32 {
            futures_util::future::join_all(requests.drain(..)).await;
        }
    }
    futures_util::future::join_all(requests).await;
    assert_eq!(http_series(&app).await, before, "no new series");
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_status() {
    let app = spawn_app().await;
    app.get("/api/health").await;
    app.get("/api/no-such-thing/123").await;

    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    let has = |needle: &str| {
        text.lines()
            .any(|line| line.starts_with("mailwright_http_requests_total") && line.contains(needle))
    };
    assert!(
        has(r#"route="/api/health""#) && has(r#"status="200""#),
        "{text}"
    );
    assert!(
        has(r#"route="unmatched""#) && has(r#"status="404""#),
        "{text}"
    );
    assert!(
        !text.contains("/api/no-such-thing/123"),
        "concrete paths are not labels"
    );
    assert!(
        text.contains("mailwright_http_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[tokio::test]
async fn the_openapi_document_lists_the_api_and_not_the_pages() {
    let app = spawn_app().await;
    let response = app.get("/api/openapi.json").await;
    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.unwrap();
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        document["openapi"]
    );
    assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/health",
        "/api/health",
        "/api/ready",
        "/metrics",
        "/api/openapi.json",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "documented {path} answers");
    }
    for path in ["/api/me", "/api/workflows", "/api/workflows/{id}"] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    // The UI's HTML pages are routes, not API.
    for (path, _) in paths {
        assert!(
            path.starts_with("/api/") || path == "/health" || path == "/metrics",
            "{path} is a page, not API"
        );
    }
    let tags = document["tags"].as_array().unwrap();
    assert!(tags.iter().all(|tag| tag["name"] != "ui"), "{tags:?}");
    assert!(document["components"]["schemas"]["Problem"].is_object());
}

#[tokio::test]
async fn stopping_lets_the_server_finish_cleanly() {
    let app = spawn_app().await;
    assert_eq!(app.get("/health").await.status(), 200);
    let address = app.address.clone();
    app.stop().await.expect("a clean shutdown");
    assert!(
        reqwest::get(format!("{address}/health")).await.is_err(),
        "no longer listening"
    );
}

/// Pages may not be framed or sniffed and run only scripts served from this
/// origin (the one script asks before destructive forms are sent).
#[tokio::test]
async fn pages_carry_security_headers_and_load_no_inline_script() {
    let app = spawn_app().await;
    let page = app.get("/setup").await;
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(
        policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"),
        "{policy}"
    );
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("onsubmit=") && !html.contains("onclick="),
        "{html}"
    );

    let api = app.get("/api/health").await;
    assert_eq!(api.headers()["x-content-type-options"], "nosniff");
    assert!(api.headers().get("content-security-policy").is_none());

    let script = app.get("/static/ui.js").await;
    assert_eq!(script.status(), 200);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let script = script.text().await.unwrap();
    for feature in ["data-confirm", "data-copy", "time[data-local]"] {
        assert!(script.contains(feature), "{feature}");
    }
}
