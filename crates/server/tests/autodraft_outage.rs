//! Auto-draft through a Gmail outage: a message whose attempt failed says it
//! is retrying, and when, instead of failing; a mailbox sync that is backing
//! off starts again at the next poll or push once Gmail answers.

mod common;

use common::autodraft::{
    PUSH_TOKEN, autodraft, base64_json, deliver, drafts, drain, enabled_world, from_bob,
};
use sandbox::Fault;

#[tokio::test]
async fn a_message_during_an_outage_is_retrying_with_its_next_attempt_then_drafted() {
    let (w, id) = enabled_world(&[]).await;
    deliver(&w, from_bob("Lunch?", "Are you free for lunch on Friday?"));
    w.sandbox
        .inject_fault("drafts.create", Fault::BackendError, 1);
    store::testing::make_polls_due(&w.app.store).await;
    w.app.autodraft.poll_tick(store::now()).await.unwrap();
    // The sync and the message's first attempt (no backoff skipped).
    w.app.worker.drain().await.unwrap();

    let stats = &autodraft(&w, &id).await["stats"];
    assert_eq!(stats["retrying"], 1, "{stats}");
    assert_eq!(stats["failed"], 0, "{stats}");
    assert_eq!(
        stats["next_retry"]["code"], "provider_unavailable",
        "{stats}"
    );
    assert!(stats["next_retry"]["at"].is_string(), "{stats}");
    assert!(drafts(&w, &id).await.is_empty());

    drain(&w).await;
    let stats = &autodraft(&w, &id).await["stats"];
    assert_eq!(
        (
            &stats["drafts_created"],
            &stats["retrying"],
            &stats["failed"]
        ),
        (&1.into(), &0.into(), &0.into()),
        "{stats}"
    );
    assert_eq!(stats["next_retry"], serde_json::Value::Null);
}

/// A sync whose reads kept failing waits out its backoff; a poll or push
/// that finds Gmail answering again brings it forward instead of being
/// swallowed by the waiting job.
#[tokio::test]
async fn a_sync_backing_off_starts_again_at_the_next_poll_and_push() {
    let (w, id) = enabled_world(&[("MAILWRIGHT_PUSH_TOKEN", PUSH_TOKEN.into())]).await;
    for (round, wake) in ["poll", "push"].into_iter().enumerate() {
        deliver(
            &w,
            from_bob(&format!("Question {round}"), "Can you check this?"),
        );
        // More failures than one call's own tries: the sync job fails and
        // backs off (seconds, not skipped here).
        w.sandbox
            .inject_fault("history.list", Fault::BackendError, 3);
        store::testing::make_polls_due(&w.app.store).await;
        w.app.autodraft.poll_tick(store::now()).await.unwrap();
        w.app.worker.drain().await.unwrap();
        assert_eq!(drafts(&w, &id).await.len(), round, "{wake}: still waiting");

        // Gmail answers again; the next poll or push starts the sync now.
        match wake {
            "poll" => {
                store::testing::make_polls_due(&w.app.store).await;
                w.app.autodraft.poll_tick(store::now()).await.unwrap();
            }
            _ => {
                let pushed = w
                    .app
                    .client
                    .post(w.app.url(&format!("/api/push/gmail?token={PUSH_TOKEN}")))
                    .json(&serde_json::json!({"message": {"data": base64_json(
                        serde_json::json!({"emailAddress": common::google::ANN, "historyId": "1"}),
                    )}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(pushed.status(), 200);
            }
        }
        w.app.worker.drain().await.unwrap();
        assert_eq!(drafts(&w, &id).await.len(), round + 1, "{wake}: drafted");
    }
}
