//! Errors a person meets in a browser are pages in the site's layout, with
//! a way back (issue "The first hour", point 2); API clients keep
//! problem+json.

mod common;

use common::spawn_app;

const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

async fn get(app: &common::TestApp, path: &str, accept: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header("accept", accept)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_browser_gets_an_error_page_and_an_api_client_a_problem() {
    let app = spawn_app().await;

    let page = get(&app, "/no/such/page", BROWSER_ACCEPT).await;
    assert_eq!(page.status(), 404);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.headers().contains_key("content-security-policy"));
    let html = page.text().await.unwrap();
    assert!(html.contains("Page not found"), "{html}");
    assert!(html.contains("href=\"/\""), "a way back: {html}");
    assert!(html.contains("href=\"/runbook#not_found\""), "{html}");

    // A POST-only address left in the address bar.
    let page = get(&app, "/settings/api-keys", BROWSER_ACCEPT).await;
    assert_eq!(page.status(), 405);
    let html = page.text().await.unwrap();
    assert!(html.contains("This address is for a form"), "{html}");

    // Not asking for HTML, or asking the API: problem+json as before.
    for (path, accept) in [
        ("/no/such/page", "application/json"),
        ("/no/such/page", "*/*"),
        ("/api/no-such-endpoint", BROWSER_ACCEPT),
    ] {
        let answer = get(&app, path, accept).await;
        assert_eq!(answer.status(), 404, "{path}");
        assert_eq!(
            answer.headers()["content-type"],
            "application/problem+json",
            "{path} with {accept}"
        );
        let problem: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(problem["code"], "not_found");
    }
}
