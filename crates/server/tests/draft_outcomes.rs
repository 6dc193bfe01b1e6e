//! What became of each draft (sent as written, sent after edits, deleted),
//! found from the mailbox and shown per draft and in the stats; and the
//! opt-in clean-up, which deletes only Mailwright's untouched drafts in
//! threads that moved on or went quiet.

mod common;

use common::autodraft::{autodraft, deliver, drafts, enabled_world, from_bob, minutes_ago, poll};
use common::google::{ANN, World};
use sandbox::InboundMessage;
use serde_json::{Value, json};

/// Look at the mailbox's pending drafts now (the job the sync queues every
/// 15 minutes).
async fn check_outcomes(w: &World, id: &str) -> usize {
    w.app
        .autodraft
        .check_outcomes(
            w.tenant.workspace,
            domain::IntegrationId::parse(id).unwrap(),
        )
        .await
        .unwrap()
}

/// The sandbox draft in this thread.
fn draft_in(w: &World, thread_id: &str) -> sandbox::DraftView {
    w.sandbox
        .drafts(ANN)
        .unwrap()
        .into_iter()
        .find(|draft| draft.message.thread_id == thread_id)
        .unwrap_or_else(|| panic!("a draft in thread {thread_id}"))
}

fn outcome_of(listed: &[Value], thread_id: &str) -> Value {
    listed
        .iter()
        .find(|draft| draft["thread_id"] == thread_id)
        .unwrap()
        .clone()
}

#[tokio::test]
async fn sent_unchanged_sent_edited_and_deleted_drafts_are_told_apart() {
    let (w, id) = enabled_world(&[]).await;
    let as_written = deliver(&w, from_bob("Contract", "Could you send me the contract?"));
    let edited = deliver(&w, from_bob("Meeting", "Can we meet on Tuesday?"));
    let thrown_away = deliver(
        &w,
        from_bob("Question", "What is the price of the basic plan?"),
    );
    poll(&w).await;
    assert_eq!(w.sandbox.drafts(ANN).unwrap().len(), 3);
    assert_eq!(check_outcomes(&w, &id).await, 0, "all still waiting");

    // Sent as written; edited, then sent; deleted.
    w.sandbox
        .send_draft(ANN, &draft_in(&w, &as_written.thread_id).draft_id)
        .unwrap();
    let draft = draft_in(&w, &edited.thread_id);
    w.sandbox
        .edit_draft(
            ANN,
            &draft.draft_id,
            "Hi Bob,\n\nTuesday at 10 works for me. See you then.\n\nAnn",
        )
        .unwrap();
    w.sandbox.send_draft(ANN, &draft.draft_id).unwrap();
    w.sandbox
        .delete_draft(ANN, &draft_in(&w, &thrown_away.thread_id).draft_id)
        .unwrap();

    assert_eq!(check_outcomes(&w, &id).await, 3);
    assert_eq!(check_outcomes(&w, &id).await, 0, "each is found once");
    let listed = drafts(&w, &id).await;
    assert_eq!(
        outcome_of(&listed, &as_written.thread_id)["outcome"],
        "sent_unchanged"
    );
    let edit = outcome_of(&listed, &edited.thread_id);
    assert_eq!(edit["outcome"], "sent_edited", "{edit}");
    let changed = edit["changed_percent"].as_i64().unwrap();
    assert!((30..=100).contains(&changed), "{edit}");
    assert_eq!(
        outcome_of(&listed, &thrown_away.thread_id)["outcome"],
        "deleted"
    );
    assert!(listed.iter().all(|draft| draft["subject"].is_string()));

    let stats = &autodraft(&w, &id).await["stats"];
    assert_eq!(
        stats["outcomes"],
        json!({"pending": 0, "sent_unchanged": 1, "sent_edited": 1, "deleted": 1, "cleaned_up": 0}),
        "{stats}"
    );
    let by_type = stats["outcomes_by_type"].as_array().unwrap();
    assert!(
        by_type
            .iter()
            .all(|row| row["generator"] == "builtin" && row["outcomes"].is_object()),
        "{stats}"
    );
    let total: i64 = by_type
        .iter()
        .flat_map(|row| row["outcomes"].as_object().unwrap().values())
        .map(|n| n.as_i64().unwrap())
        .sum();
    assert_eq!(total, 3);
}

async fn clean_up(w: &World, id: &str, body: Value) -> Value {
    let answer = w
        .app
        .client
        .post(
            w.app
                .url(&format!("/api/integrations/{id}/auto-draft/cleanup")),
        )
        .bearer_auth(&w.tenant.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    answer.json().await.unwrap()
}

#[tokio::test]
async fn the_cleanup_deletes_only_stale_untouched_mailwright_drafts() {
    let (w, id) = enabled_world(&[]).await;
    let days_ago = |days: i64| minutes_ago(days * 24 * 60);
    let old = |subject: &str| InboundMessage {
        internal_date: Some(days_ago(20)),
        ..from_bob(subject, "Could you send me the report?")
    };
    // Two stale untouched drafts: one in a thread Ann answered another way,
    // one in a thread quiet for 20 days.
    let mut answered = from_bob("Answered", "Could you send me the invoice?");
    answered.message_id = Some("answered@bob.example".into());
    let answered = deliver(&w, answered);
    let quiet = deliver(&w, old("Quiet"));
    // Three that must stay: an edited one (quiet too), one in a thread
    // still moving (quiet but Bob wrote again today), and Ann's own draft.
    let edited = deliver(&w, old("Edited"));
    let mut moving = old("Moving");
    moving.message_id = Some("moving@bob.example".into());
    let moving = deliver(&w, moving);
    poll(&w).await;
    assert_eq!(w.sandbox.drafts(ANN).unwrap().len(), 4);
    for thread in [&quiet.thread_id, &edited.thread_id, &moving.thread_id] {
        store::testing::age_draft(
            &w.app.store,
            &draft_in(&w, thread).draft_id,
            chrono::Duration::days(20),
        )
        .await;
    }
    let reply = InboundMessage::new(ANN, "bob@example.com", "Re: Answered", "Sent it by post.")
        .header("In-Reply-To", "<answered@bob.example>")
        .header("References", "<answered@bob.example>")
        .labels(["SENT"]);
    w.sandbox
        .deliver(&InboundMessage {
            to: vec![ANN.into()],
            ..reply
        })
        .unwrap();
    let draft = draft_in(&w, &edited.thread_id);
    w.sandbox
        .edit_draft(
            ANN,
            &draft.draft_id,
            "Hi Bob,\n\nI am still working on it.\n\nAnn",
        )
        .unwrap();
    w.sandbox
        .deliver(
            &from_bob("Re: Moving", "Any news?")
                .header("In-Reply-To", "<moving@bob.example>")
                .header("References", "<moving@bob.example>"),
        )
        .unwrap();
    let own =
        InboundMessage::new(ANN, "carol@example.com", "My own", "Half-written").labels(["DRAFT"]);
    w.sandbox
        .deliver(&InboundMessage {
            to: vec![ANN.into()],
            ..own
        })
        .unwrap();
    let drafts_before = w.sandbox.drafts(ANN).unwrap().len();
    assert_eq!(drafts_before, 4, "Mailwright's four");

    let listed = clean_up(&w, &id, json!({"dry_run": true, "after_days": 14})).await;
    let mut threads: Vec<&str> = listed["drafts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|draft| draft["thread_id"].as_str().unwrap())
        .collect();
    threads.sort();
    let mut expected = vec![answered.thread_id.as_str(), quiet.thread_id.as_str()];
    expected.sort();
    assert_eq!(threads, expected, "{listed:#}");
    assert_eq!(
        w.sandbox.drafts(ANN).unwrap().len(),
        drafts_before,
        "a dry run deletes nothing"
    );

    let done = clean_up(&w, &id, json!({"dry_run": false, "after_days": 14})).await;
    assert_eq!(done["drafts"].as_array().unwrap().len(), 2, "{done:#}");
    let left: Vec<String> = w
        .sandbox
        .drafts(ANN)
        .unwrap()
        .into_iter()
        .map(|draft| draft.message.thread_id)
        .collect();
    assert_eq!(left.len(), drafts_before - 2);
    for thread in [&edited.thread_id, &moving.thread_id] {
        assert!(left.contains(thread), "{thread} stays");
    }
    assert!(
        w.sandbox
            .messages(ANN)
            .unwrap()
            .iter()
            .any(|message| message.subject == "My own"
                && message.label_ids.iter().any(|label| label == "DRAFT")),
        "Ann's own draft stays"
    );
    let listed = drafts(&w, &id).await;
    for thread in [&answered.thread_id, &quiet.thread_id] {
        assert_eq!(outcome_of(&listed, thread)["outcome"], "cleaned_up");
    }
    let state = autodraft(&w, &id).await;
    assert_eq!(state["stats"]["outcomes"]["cleaned_up"], 2);
    assert_eq!(
        state["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|event| event["kind"] == "cleanup")
            .count(),
        2,
        "every deletion is recorded: {state:#}"
    );

    // Opt-in: the setting is off until switched on.
    assert_eq!(state["cleanup"]["enabled"], false);
    let on = w
        .app
        .client
        .put(w.app.url(&format!("/api/integrations/{id}/auto-draft")))
        .bearer_auth(&w.tenant.key)
        .json(&json!({"cleanup": {"enabled": true, "after_days": 400}}))
        .send()
        .await
        .unwrap();
    let problem = common::assert_problem(on, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "cleanup.after_days");
}
