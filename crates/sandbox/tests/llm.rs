//! The OpenAI-compatible chat-completions emulator.

use std::time::Duration;

use mailwright_sandbox::{LlmReply, LlmSandbox};
use serde_json::{Value, json};

async fn start() -> (LlmSandbox, String, reqwest::Client) {
    let llm = LlmSandbox::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = llm.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    // See tests/common: the workspace builds reqwest without a TLS provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    (llm, base, reqwest::Client::new())
}

fn request() -> Value {
    json!({ "model": "gpt-test", "messages": [{ "role": "system", "content": "Classify." }, { "role": "user", "content": "Buy now!" }] })
}

#[tokio::test]
async fn scripted_reply_has_the_openai_shape() {
    let (llm, base, http) = start().await;
    llm.push_reply(LlmReply::content("{\"label\":\"promo\"}"));
    let response = http
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth("sk-test")
        .json(&request())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["object"], "chat.completion");
    assert!(body["created"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(body["model"], "gpt-test");
    assert_eq!(
        body["choices"],
        json!([{ "index": 0, "message": { "role": "assistant", "content": "{\"label\":\"promo\"}" }, "finish_reason": "stop" }])
    );
    let usage = &body["usage"];
    assert_eq!(
        usage["total_tokens"],
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    assert_eq!(llm.requests(), vec![request()]);

    // Unscripted: the default reply.
    let body: Value = http
        .post(format!("{base}/v1/chat/completions"))
        .json(&request())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        LlmSandbox::DEFAULT_REPLY
    );
}

#[tokio::test]
async fn scripted_errors_latency_and_bad_requests() {
    let (llm, base, http) = start().await;
    llm.push_reply(LlmReply::error(429));
    let response = http
        .post(format!("{base}/v1/chat/completions"))
        .json(&request())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert!(body["error"]["message"].is_string());

    let response = http
        .post(format!("{base}/_sandbox/llm/replies"))
        .json(&json!({ "content": "slow", "latency_ms": 2000 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let err = http
        .post(format!("{base}/v1/chat/completions"))
        .json(&request())
        .timeout(Duration::from_millis(150))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());

    let response = http
        .post(format!("{base}/v1/chat/completions"))
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["type"],
        "invalid_request_error"
    );
    let response = http
        .post(format!("{base}/v1/chat/completions"))
        .json(&json!({ "model": "m" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let requests: Value = http
        .get(format!("{base}/_sandbox/llm/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        requests.as_array().unwrap().len(),
        2,
        "well-formed requests are recorded"
    );
}
