//! Chaos: seeded, probabilistic failures of Gmail calls, so that retry and
//! idempotency code meets the mix of faults real Gmail produces without a
//! test scripting each one.
//!
//! A matching call fails with chance `probability`. The draw and the kind of
//! failure come from one `fastrand::Rng` seeded by the test and held in the
//! sandbox state, so a seed and a call order give the same failures every
//! run. Faults queued with [`Sandbox::inject_fault`] go first: a call that
//! takes one draws nothing.

use std::cell::Cell;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Sandbox;
use crate::control::{body, control_error};
use crate::google_error;
use crate::scopes::GmailMethod;

/// What a test asks for: fail this share of Gmail calls, drawn from `seed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Chaos {
    /// Chance that a matching call fails, in `0.0..=1.0`.
    pub probability: f64,
    pub seed: u64,
    /// Gmail method names ([`GmailMethod::name`]); `None` means every Gmail
    /// method. OAuth endpoints and `/_sandbox` controls are never struck.
    #[serde(default)]
    pub methods: Option<Vec<String>>,
}

impl Chaos {
    pub fn new(probability: f64, seed: u64) -> Self {
        Self {
            probability,
            seed,
            methods: None,
        }
    }

    /// Restricts chaos to these Gmail methods.
    pub fn only<S: Into<String>>(mut self, methods: impl IntoIterator<Item = S>) -> Self {
        self.methods = Some(methods.into_iter().map(Into::into).collect());
        self
    }

    fn validate(&self) -> Result<(), ChaosError> {
        if !(0.0..=1.0).contains(&self.probability) {
            return Err(ChaosError::Probability(self.probability));
        }
        let unknown = self
            .methods
            .iter()
            .flatten()
            .find(|m| GmailMethod::from_name(m).is_none());
        match unknown {
            Some(method) => Err(ChaosError::UnknownMethod(method.clone())),
            None => Ok(()),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum ChaosError {
    /// Not within `0.0..=1.0` (or NaN).
    Probability(f64),
    /// Not a Gmail method the sandbox serves (a typo would silently make
    /// chaos strike nothing).
    UnknownMethod(String),
}

impl std::fmt::Display for ChaosError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Probability(p) => write!(f, "probability must be within 0.0..=1.0, got {p}"),
            Self::UnknownMethod(m) => write!(f, "not a Gmail method: {m}"),
        }
    }
}

impl std::error::Error for ChaosError {}

/// How many failures of each kind chaos has injected since the last
/// [`Sandbox::set_chaos`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChaosReport {
    /// 429 `rateLimitExceeded` with `Retry-After: 1`.
    pub rate_limited: u64,
    /// 500 `backendError`.
    pub backend_error: u64,
    /// 503 `UNAVAILABLE`.
    pub unavailable: u64,
    /// Connection dropped before the call took effect.
    pub dropped_before: u64,
    /// Connection dropped after a write took effect: the mailbox changed
    /// but the client never got the answer.
    pub dropped_after_write: u64,
}

impl ChaosReport {
    pub fn total(&self) -> u64 {
        self.rate_limited
            + self.backend_error
            + self.unavailable
            + self.dropped_before
            + self.dropped_after_write
    }

    fn record(&mut self, strike: Strike) {
        *match strike {
            Strike::RateLimited => &mut self.rate_limited,
            Strike::BackendError => &mut self.backend_error,
            Strike::Unavailable => &mut self.unavailable,
            Strike::DroppedBefore => &mut self.dropped_before,
            Strike::DroppedAfterWrite => &mut self.dropped_after_write,
        } += 1;
    }
}

/// Chaos as held in the sandbox state.
#[derive(Default)]
pub(crate) struct ChaosState {
    active: Option<(Chaos, fastrand::Rng)>,
    report: ChaosReport,
}

/// One injected failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Strike {
    RateLimited,
    BackendError,
    Unavailable,
    DroppedBefore,
    DroppedAfterWrite,
}

/// Kinds for reads come first, so a write's extra kind is the last index.
const KINDS: [Strike; 5] = [
    Strike::RateLimited,
    Strike::BackendError,
    Strike::Unavailable,
    Strike::DroppedBefore,
    Strike::DroppedAfterWrite,
];

impl ChaosState {
    /// Decides whether this call fails, and how. Called under the world
    /// lock after authentication and scope checks, when no queued fault
    /// applies.
    pub(crate) fn draw(&mut self, method: GmailMethod) -> Option<Strike> {
        let (chaos, rng) = self.active.as_mut()?;
        let matches = chaos
            .methods
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == method.name()));
        // f64() is in [0, 1): probability 1.0 always strikes, 0.0 never.
        if !matches || rng.f64() >= chaos.probability {
            return None;
        }
        // Losing the answer after a write needs the layer that discards it.
        let kinds = if method.is_write() && DROP_ANSWER.try_with(|_| ()).is_ok() {
            &KINDS[..]
        } else {
            &KINDS[..4]
        };
        let strike = kinds[rng.usize(..kinds.len())];
        self.report.record(strike);
        Some(strike)
    }
}

impl Strike {
    /// Carries out the strike: the response that replaces the call's, or
    /// `None` for [`Strike::DroppedAfterWrite`], where the call goes ahead
    /// and [`drop_answer_layer`] throws its answer away.
    pub(crate) fn apply(self) -> Option<Response> {
        match self {
            Self::RateLimited => {
                let mut response = google_error::rate_limited();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                Some(response)
            }
            Self::BackendError => Some(google_error::backend_error()),
            Self::Unavailable => Some(google_error::unavailable()),
            Self::DroppedBefore => Some(dropped_connection()),
            Self::DroppedAfterWrite => {
                // Outside the layer (never for routed calls) there is no
                // answer to lose, so the call simply succeeds.
                let _ = DROP_ANSWER.try_with(|drop| drop.set(true));
                None
            }
        }
    }
}

tokio::task_local! {
    /// Set by a handler's authorization when the answer is to be lost.
    static DROP_ANSWER: Cell<bool>;
}

/// Middleware around the Gmail routes: runs the real handler and, when
/// chaos chose [`Strike::DroppedAfterWrite`] for the call, throws its
/// answer away and drops the connection instead.
pub(crate) async fn drop_answer_layer(request: Request, next: Next) -> Response {
    DROP_ANSWER
        .scope(Cell::new(false), async move {
            let answer = next.run(request).await;
            if DROP_ANSWER.with(Cell::get) {
                drop(answer);
                dropped_connection()
            } else {
                answer
            }
        })
        .await
}

/// A response that makes hyper abort the connection: its body fails on
/// the first poll. hyper buffers the status line and headers and polls the
/// body before flushing, so on HTTP/1 nothing reaches the client and the
/// connection closes: reqwest's `send()` fails ("connection closed before
/// message completed", `is_request()`), as when a TCP connection dies
/// mid-call. Behind a layer that flushes headers early it would surface as
/// a body error instead.
fn dropped_connection() -> Response {
    Response::new(Body::new(SeveredBody))
}

struct SeveredBody;

impl HttpBody for SeveredBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "sandbox chaos: connection dropped",
        ))))
    }
}

impl Sandbox {
    /// Starts failing Gmail calls at random (see [`Chaos`]); replaces any
    /// earlier chaos, reseeds and zeroes the report.
    pub fn set_chaos(&self, chaos: Chaos) -> Result<(), ChaosError> {
        chaos.validate()?;
        let rng = fastrand::Rng::with_seed(chaos.seed);
        let mut world = self.lock();
        world.chaos = ChaosState {
            active: Some((chaos, rng)),
            report: ChaosReport::default(),
        };
        Ok(())
    }

    /// Stops chaos; the report stays readable until the next `set_chaos`.
    pub fn clear_chaos(&self) {
        self.lock().chaos.active = None;
    }

    pub fn chaos_report(&self) -> ChaosReport {
        self.lock().chaos.report
    }
}

pub(crate) fn routes() -> Router<Sandbox> {
    Router::new().route(
        "/_sandbox/chaos",
        post(set_chaos).get(chaos_report).delete(clear_chaos),
    )
}

async fn set_chaos(State(sandbox): State<Sandbox>, bytes: Bytes) -> Response {
    let chaos: Chaos = match body(&bytes) {
        Ok(chaos) => chaos,
        Err(bad) => return bad.into_response(),
    };
    match sandbox.set_chaos(chaos) {
        Ok(()) => Json(json!({})).into_response(),
        Err(e) => control_error(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
    }
}

async fn clear_chaos(State(sandbox): State<Sandbox>) -> Response {
    sandbox.clear_chaos();
    Json(json!({})).into_response()
}

async fn chaos_report(State(sandbox): State<Sandbox>) -> Response {
    Json(sandbox.chaos_report()).into_response()
}
