//! An OpenAI-compatible `POST /v1/chat/completions` whose answers a test
//! scripts: content, latency, or an error status.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// One scripted answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlmReply {
    #[serde(default)]
    pub content: String,
    /// Wait this long before answering.
    #[serde(default)]
    pub latency_ms: u64,
    /// Answer with this HTTP status and an OpenAI error body instead.
    #[serde(default)]
    pub status: Option<u16>,
}

impl LlmReply {
    pub fn content(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            latency_ms: 0,
            status: None,
        }
    }

    pub fn error(status: u16) -> Self {
        Self {
            content: String::new(),
            latency_ms: 0,
            status: Some(status),
        }
    }

    pub fn after(mut self, latency: Duration) -> Self {
        self.latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self
    }
}

#[derive(Default)]
struct LlmState {
    replies: VecDeque<LlmReply>,
    requests: Vec<Value>,
    counter: u64,
}

/// The chat-completions emulator. Unscripted calls answer
/// [`LlmSandbox::DEFAULT_REPLY`].
#[derive(Clone, Default)]
pub struct LlmSandbox {
    state: Arc<Mutex<LlmState>>,
}

impl LlmSandbox {
    /// The model `GET /v1/models` lists (any model is answered).
    pub const MODEL: &'static str = "sandbox-chat";

    pub const DEFAULT_REPLY: &'static str = "Sandbox reply.";

    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, LlmState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues the answer to a future call (first in, first out).
    pub fn push_reply(&self, reply: LlmReply) {
        self.lock().replies.push_back(reply);
    }

    /// Request bodies received so far.
    pub fn requests(&self) -> Vec<Value> {
        self.lock().requests.clone()
    }

    /// `/v1/chat/completions` plus controls `POST /_sandbox/llm/replies`
    /// (an [`LlmReply`]) and `GET /_sandbox/llm/requests`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .route("/v1/models", get(models))
            .route("/_sandbox/llm/replies", post(push_reply))
            .route("/_sandbox/llm/requests", get(requests))
            .with_state(self.clone())
    }
}

fn openai_error(status: StatusCode, message: &str, kind: &str, code: Option<&str>) -> Response {
    (
        status,
        Json(json!({ "error": { "message": message, "type": kind, "param": null, "code": code } })),
    )
        .into_response()
}

/// Roughly four characters a token, as a stand-in for a tokenizer.
fn approximate_tokens(text: &str) -> u64 {
    u64::try_from(text.chars().count().div_ceil(4)).unwrap_or(u64::MAX)
}

async fn chat_completions(State(llm): State<LlmSandbox>, body: Bytes) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(e) => {
            return openai_error(
                StatusCode::BAD_REQUEST,
                &format!("We could not parse the JSON body of your request. ({e})"),
                "invalid_request_error",
                None,
            );
        }
    };
    let Some(model) = request
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "you must provide a model parameter",
            "invalid_request_error",
            None,
        );
    };
    let Some(messages) = request.get("messages").and_then(Value::as_array) else {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "Missing required parameter: 'messages'.",
            "invalid_request_error",
            Some("missing_required_parameter"),
        );
    };
    let prompt_tokens: u64 = messages
        .iter()
        .filter_map(|m| m.get("content").and_then(Value::as_str))
        .map(approximate_tokens)
        .sum();
    let (reply, id) = {
        let mut state = llm.lock();
        state.requests.push(request.clone());
        state.counter += 1;
        let reply = state
            .replies
            .pop_front()
            .unwrap_or_else(|| LlmReply::content(LlmSandbox::DEFAULT_REPLY));
        (reply, state.counter)
    };
    if reply.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(reply.latency_ms)).await;
    }
    if let Some(status) = reply.status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (kind, code) = match status.as_u16() {
            429 => ("requests", Some("rate_limit_exceeded")),
            401 => ("invalid_request_error", Some("invalid_api_key")),
            400..=499 => ("invalid_request_error", None),
            _ => ("server_error", None),
        };
        return openai_error(status, "Scripted sandbox error.", kind, code);
    }
    let completion_tokens = approximate_tokens(&reply.content);
    Json(json!({
        "id": format!("chatcmpl-sandbox{id}"),
        "object": "chat.completion",
        "created": chrono::Utc::now().timestamp(),
        "model": model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": reply.content },
            "finish_reason": "stop",
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }))
    .into_response()
}

async fn push_reply(State(llm): State<LlmSandbox>, body: Bytes) -> Response {
    match serde_json::from_slice::<LlmReply>(&body) {
        Ok(reply) => {
            llm.push_reply(reply);
            Json(json!({})).into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": format!("invalid JSON body: {e}") })),
        )
            .into_response(),
    }
}

async fn requests(State(llm): State<LlmSandbox>) -> Response {
    Json(llm.requests()).into_response()
}

/// `GET /v1/models`: the emulator answers any model; it lists the one it
/// is known by.
async fn models() -> Json<Value> {
    Json(json!({"object": "list", "data": [
        {"id": LlmSandbox::MODEL, "object": "model", "owned_by": "sandbox"}
    ]}))
}
