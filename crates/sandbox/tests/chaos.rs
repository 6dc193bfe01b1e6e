//! Chaos: seeded random failures of Gmail calls, as a client sees them.

mod common;

use common::*;
use mailwright_sandbox::{Chaos, ChaosError, ChaosReport, Fault};
use serde_json::{Value, json};

/// One Gmail call a test makes.
#[derive(Clone, Copy)]
enum Call<'a> {
    Profile,
    List,
    Send(&'a str),
    Draft(&'a str),
    DeleteDraft(&'a str),
}

/// What the client saw.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Answered(u16),
    Dropped,
}

fn raw_to_bob(subject: &str) -> String {
    b64url(&format!(
        "To: {BOB}\r\nSubject: {subject}\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nbody of {subject}"
    ))
}

/// Makes the call and checks each injected failure's shape on the way.
async fn call(h: &Harness, token: &str, call: Call<'_>) -> Outcome {
    let gmail = |path: &str| h.url(&format!("/gmail/v1/users/me/{path}"));
    let request = match call {
        Call::Profile => h.http.get(gmail("profile")),
        Call::List => h.http.get(gmail("messages")),
        Call::Send(subject) => h
            .http
            .post(gmail("messages/send"))
            .json(&json!({ "raw": raw_to_bob(subject) })),
        Call::Draft(subject) => h
            .http
            .post(gmail("drafts"))
            .json(&json!({ "message": { "raw": raw_to_bob(subject) } })),
        Call::DeleteDraft(id) => h.http.delete(gmail(&format!("drafts/{id}"))),
    };
    let response = match request.bearer_auth(token).send().await {
        Ok(response) => response,
        Err(e) => {
            // A dropped connection fails `send()` itself: hyper never
            // flushed a status line, so the client reports an incomplete
            // message as a request error, not a connect or body error.
            assert!(e.is_request(), "{e:?}");
            assert!(!e.is_connect() && !e.is_body() && !e.is_timeout(), "{e:?}");
            return Outcome::Dropped;
        }
    };
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").cloned();
    let body: Value = if status == 204 {
        Value::Null
    } else {
        response
            .json()
            .await
            .expect("an answered call has a JSON body")
    };
    let reason = &body["error"]["errors"][0]["reason"];
    match status {
        429 => {
            assert_eq!(reason, "rateLimitExceeded", "{body}");
            assert_eq!(retry_after.unwrap(), "1");
        }
        500 => assert_eq!(reason, "backendError", "{body}"),
        503 => {
            assert_eq!(body["error"]["status"], "UNAVAILABLE", "{body}");
            assert_eq!(
                body["error"]["message"],
                "The service is currently unavailable."
            );
        }
        _ => {}
    }
    Outcome::Answered(status)
}

fn failed(outcome: &Outcome) -> bool {
    !matches!(outcome, Outcome::Answered(200..=299))
}

/// Cycles through reads and writes: `i`th call of a mixed workload.
async fn mixed_call(h: &Harness, token: &str, i: usize) -> Outcome {
    let subject = format!("mixed {i}");
    let next = match i % 4 {
        0 => Call::Profile,
        1 => Call::List,
        2 => Call::Send(&subject),
        _ => Call::Draft(&subject),
    };
    call(h, token, next).await
}

async fn mixed_run(seed: u64, probability: f64, calls: usize) -> Vec<Outcome> {
    let h = start().await;
    let token = h.access_token(ANN, GMAIL_MODIFY).await;
    h.sandbox.set_chaos(Chaos::new(probability, seed)).unwrap();
    let mut outcomes = Vec::new();
    for i in 0..calls {
        outcomes.push(mixed_call(&h, &token, i).await);
    }
    outcomes
}

#[tokio::test]
async fn every_call_fails_and_every_kind_occurs_at_probability_one() {
    let h = start().await;
    let token = h.access_token(ANN, GMAIL_MODIFY).await;
    h.sandbox.set_chaos(Chaos::new(1.0, 7)).unwrap();
    let mut seen = ChaosReport::default();
    let mut dropped = 0;
    for i in 0..200 {
        match mixed_call(&h, &token, i).await {
            Outcome::Answered(429) => seen.rate_limited += 1,
            Outcome::Answered(500) => seen.backend_error += 1,
            Outcome::Answered(503) => seen.unavailable += 1,
            Outcome::Dropped => dropped += 1,
            other => panic!("call {i} was not struck: {other:?}"),
        }
    }
    let report = h.sandbox.chaos_report();
    assert_eq!(report.total(), 200, "{report:?}");
    assert_eq!(
        (
            report.rate_limited,
            report.backend_error,
            report.unavailable
        ),
        (seen.rate_limited, seen.backend_error, seen.unavailable)
    );
    assert_eq!(dropped, report.dropped_before + report.dropped_after_write);
    for (kind, count) in [
        ("rate_limited", report.rate_limited),
        ("backend_error", report.backend_error),
        ("unavailable", report.unavailable),
        ("dropped_before", report.dropped_before),
        ("dropped_after_write", report.dropped_after_write),
    ] {
        assert!(count > 0, "no {kind} in {report:?}");
    }
    // Reads change nothing and every other failure strikes before the
    // write, so the mailbox holds exactly one change per lost answer: none
    // of them struck a read.
    let applied = h.sandbox.sent_count(ANN).unwrap() + h.sandbox.drafts(ANN).unwrap().len();
    assert_eq!(applied as u64, report.dropped_after_write);
}

#[tokio::test]
async fn reads_never_lose_an_answer_after_the_fact() {
    let h = start().await;
    let token = h.access_token(ANN, GMAIL_MODIFY).await;
    h.sandbox.set_chaos(Chaos::new(1.0, 11)).unwrap();
    for i in 0..100 {
        let next = if i % 2 == 0 {
            Call::Profile
        } else {
            Call::List
        };
        assert!(failed(&call(&h, &token, next).await));
    }
    let report = h.sandbox.chaos_report();
    assert_eq!(report.dropped_after_write, 0, "{report:?}");
    assert!(report.dropped_before > 0, "{report:?}");
}

#[tokio::test]
async fn probability_zero_fails_nothing() {
    let outcomes = mixed_run(3, 0.0, 100).await;
    assert!(outcomes.iter().all(|o| !failed(o)), "{outcomes:?}");
}

#[tokio::test]
async fn the_same_seed_replays_the_same_outcomes() {
    let first = mixed_run(42, 0.5, 80).await;
    let second = mixed_run(42, 0.5, 80).await;
    assert_eq!(first, second);
    assert!(first.iter().any(failed) && !first.iter().all(failed));
    let other_seed = mixed_run(43, 0.5, 80).await;
    assert_ne!(first, other_seed);
}

#[tokio::test]
async fn a_write_whose_answer_is_lost_was_applied() {
    let h = start().await;
    let token = h.access_token(ANN, GMAIL_MODIFY).await;
    h.sandbox
        .set_chaos(Chaos::new(1.0, 5).only(["messages.send"]))
        .unwrap();
    let mut lost = Vec::new();
    let mut refused = Vec::new();
    for i in 0..40 {
        let subject = format!("chaos{i}send");
        let before = h.sandbox.chaos_report();
        let outcome = call(&h, &token, Call::Send(&subject)).await;
        let after = h.sandbox.chaos_report();
        assert!(failed(&outcome));
        if after.dropped_after_write > before.dropped_after_write {
            assert_eq!(outcome, Outcome::Dropped);
            lost.push(subject);
        } else {
            refused.push(subject);
        }
    }
    assert!(!lost.is_empty() && !refused.is_empty());

    h.sandbox.clear_chaos();
    let sent: Vec<String> = h
        .sandbox
        .sent_messages(ANN)
        .unwrap()
        .into_iter()
        .map(|m| m.subject)
        .collect();
    assert_eq!(sent, lost, "exactly the sends whose answer was lost");
    let bob_got = h.sandbox.messages(BOB).unwrap();
    assert_eq!(bob_got.len(), lost.len(), "and they were delivered");
    let (status, found) = h
        .gmail_get(&token, &format!("messages?q=subject:{}", lost[0]))
        .await;
    assert_eq!(status, 200);
    assert_eq!(found["resultSizeEstimate"], 1, "{found}");
}

#[tokio::test]
async fn a_draft_deleted_without_an_answer_is_gone() {
    let h = start().await;
    let token = h.access_token(ANN, GMAIL_MODIFY).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let (status, draft) = h
            .gmail_post(
                &token,
                "drafts",
                &json!({ "message": { "raw": raw_to_bob(&format!("d{i}")) } }),
            )
            .await;
        assert_eq!(status, 200);
        ids.push(draft["id"].as_str().unwrap().to_owned());
    }
    h.sandbox
        .set_chaos(Chaos::new(1.0, 9).only(["drafts.delete"]))
        .unwrap();
    let mut lost = Vec::new();
    for id in &ids {
        let before = h.sandbox.chaos_report().dropped_after_write;
        let outcome = call(&h, &token, Call::DeleteDraft(id)).await;
        if h.sandbox.chaos_report().dropped_after_write > before {
            assert_eq!(outcome, Outcome::Dropped);
            lost.push(id.clone());
        }
    }
    assert!(!lost.is_empty());
    let left: Vec<String> = h
        .sandbox
        .drafts(ANN)
        .unwrap()
        .into_iter()
        .map(|d| d.draft_id)
        .collect();
    assert_eq!(left.len(), ids.len() - lost.len());
    assert!(lost.iter().all(|id| !left.contains(id)));
}

#[tokio::test]
async fn a_fifth_of_calls_fail_at_probability_point_two() {
    let h = start().await;
    let token = h.access_token(ANN, GMAIL_MODIFY).await;
    h.sandbox.set_chaos(Chaos::new(0.2, 2024)).unwrap();
    let mut failures = 0u32;
    for _ in 0..500 {
        if failed(&call(&h, &token, Call::Profile).await) {
            failures += 1;
        }
    }
    let share = f64::from(failures) / 500.0;
    assert!((0.12..0.28).contains(&share), "share {share}");
    assert_eq!(h.sandbox.chaos_report().total(), u64::from(failures));
}

#[tokio::test]
async fn queued_faults_and_auth_checks_go_before_chaos() {
    let h = start().await;
    let token = h.access_token(ANN, GMAIL_MODIFY).await;
    h.sandbox.set_chaos(Chaos::new(1.0, 1)).unwrap();
    h.sandbox.inject_fault(
        "getProfile",
        Fault::Status {
            status: 418,
            body: json!({ "error": "teapot" }),
        },
        1,
    );
    assert_eq!(
        call(&h, &token, Call::Profile).await,
        Outcome::Answered(418)
    );
    assert_eq!(h.sandbox.chaos_report().total(), 0);
    assert_eq!(h.gmail_get("not-a-token", "profile").await.0, 401);
    let compose = h.access_token(ANN, GMAIL_COMPOSE).await;
    assert_eq!(h.gmail_get(&compose, "messages").await.0, 403);
    assert_eq!(
        h.sandbox.chaos_report().total(),
        0,
        "OAuth and refused calls are not struck"
    );
    assert!(failed(&call(&h, &token, Call::Profile).await));
    assert_eq!(h.sandbox.chaos_report().total(), 1);
}

#[tokio::test]
async fn chaos_control_over_http_validates_and_reports() {
    let h = start().await;
    let token = h.access_token(ANN, GMAIL_MODIFY).await;
    let post = |body: Value| {
        let request = h.http.post(h.url("/_sandbox/chaos")).json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    for bad in [1.5, -0.1] {
        let (status, error) = post(json!({ "probability": bad, "seed": 1 })).await;
        assert_eq!(status, 422, "{error}");
        assert!(error["error"].as_str().unwrap().contains("probability"));
    }
    let (status, error) =
        post(json!({ "probability": 0.5, "seed": 1, "methods": ["oauth.token"] })).await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(post(json!({ "seed": 1 })).await.0, 400);
    assert_eq!(
        post(json!({ "probability": "often", "seed": 1 })).await.0,
        400
    );
    assert_eq!(
        h.sandbox.set_chaos(Chaos::new(1.5, 1)),
        Err(ChaosError::Probability(1.5))
    );
    assert!(matches!(
        h.sandbox.set_chaos(Chaos::new(f64::NAN, 1)),
        Err(ChaosError::Probability(p)) if p.is_nan()
    ));

    let (status, _) =
        post(json!({ "probability": 1.0, "seed": 5, "methods": ["getProfile"] })).await;
    assert_eq!(status, 200);
    assert!(failed(&call(&h, &token, Call::Profile).await));
    assert_eq!(call(&h, &token, Call::List).await, Outcome::Answered(200));
    h.access_token(ANN, GMAIL_READONLY).await;
    let report: Value = h
        .http
        .get(h.url("/_sandbox/chaos"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut keys: Vec<&String> = report.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "backend_error",
            "dropped_after_write",
            "dropped_before",
            "rate_limited",
            "unavailable"
        ]
    );
    let total: u64 = report
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, 1);

    let response = h
        .http
        .delete(h.url("/_sandbox/chaos"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        call(&h, &token, Call::Profile).await,
        Outcome::Answered(200)
    );
    assert_eq!(h.sandbox.chaos_report().total(), 1, "kept after clearing");
}
