//! Auto-draft on an Outlook mailbox, through the sandbox's Graph: new mail
//! found by a delta round gets one reply draft in its conversation (made
//! with createReply, marked so a retry adopts it), an expired delta link is
//! caught up without a second draft, and Graph's throttling is waited out.

mod common;

use common::autodraft::{CAROL, deliver_to_outlook, drafts, drain, poll, put_switch};
use common::google::{ANN_OUTLOOK, World, world};
use sandbox::{Consent, GraphFault};
use serde_json::Value;

async fn outlook_with_autodraft() -> (World, String) {
    let w = world().await;
    let id = w.connect_outlook(Consent::allow_all()).await["integration_id"].clone();
    let (status, body) = put_switch(&w, &id, true).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["enabled"], true);
    drain(&w).await;
    (w, id)
}

fn outlook_drafts(w: &World) -> Vec<sandbox::MicrosoftMessageView> {
    w.sandbox.microsoft().messages(ANN_OUTLOOK, "drafts")
}

#[tokio::test]
async fn new_mail_gets_one_reply_draft_in_its_conversation() {
    let (w, id) = outlook_with_autodraft().await;
    let original = deliver_to_outlook(&w, "March figures");
    poll(&w).await;

    let made = outlook_drafts(&w);
    assert_eq!(made.len(), 1, "{made:?}");
    let draft = &made[0];
    assert_eq!(draft.conversation_id, original.conversation_id);
    assert_eq!(draft.subject, "Re: March figures");
    assert_eq!(draft.to, [CAROL]);
    assert_eq!(
        draft.in_reply_to.as_deref(),
        Some(original.internet_message_id.as_str())
    );
    assert!(
        draft.body.len() > 20 && !draft.body.starts_with('>'),
        "a written reply: {}",
        draft.body
    );
    assert!(
        draft.extended_properties.iter().any(|(name, value)| name
            .ends_with("Name X-Mailwright-Source")
            && *value == original.id),
        "marked: {:?}",
        draft.extended_properties
    );
    let listed: Vec<Value> = drafts(&w, &id).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["thread_id"], original.conversation_id.as_str());

    // More polls, nothing new: still one draft.
    poll(&w).await;
    poll(&w).await;
    assert_eq!(outlook_drafts(&w).len(), 1);
}

#[tokio::test]
async fn an_expired_delta_link_is_caught_up_without_a_second_draft() {
    let (w, _id) = outlook_with_autodraft().await;
    deliver_to_outlook(&w, "First");
    poll(&w).await;
    assert_eq!(outlook_drafts(&w).len(), 1);

    w.sandbox.microsoft().expire_delta_tokens(ANN_OUTLOOK, None);
    deliver_to_outlook(&w, "Second");
    poll(&w).await;
    let subjects: Vec<String> = outlook_drafts(&w)
        .into_iter()
        .map(|draft| draft.subject)
        .collect();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(subjects.contains(&"Re: Second".to_owned()), "{subjects:?}");
    assert!(w.sandbox.microsoft().call_count("graph.delta") > 2);
}

#[tokio::test]
async fn graph_throttling_is_waited_out_and_the_draft_still_made_once() {
    let (w, id) = outlook_with_autodraft().await;
    deliver_to_outlook(&w, "Throttled");
    w.sandbox
        .microsoft()
        .fail_graph_calls(GraphFault::throttle(2, 1));
    poll(&w).await;
    // The throttled work is retrying, saying when; then it goes through.
    for _ in 0..5 {
        if outlook_drafts(&w).len() == 1 {
            break;
        }
        poll(&w).await;
    }
    assert_eq!(outlook_drafts(&w).len(), 1);
    assert_eq!(w.sandbox.microsoft().call_count("graph.fault"), 2);
    let listed = drafts(&w, &id).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
}

#[tokio::test]
async fn a_draft_whose_answer_was_lost_is_adopted_not_made_twice() {
    let (w, id) = outlook_with_autodraft().await;
    let original = deliver_to_outlook(&w, "Lost answer");
    // Graph makes the reply draft, and the answer never reaches us.
    w.sandbox
        .microsoft()
        .fail_graph_calls(GraphFault::lost_answer(1).on_path("/createReply"));
    poll(&w).await;
    for _ in 0..5 {
        if drafts(&w, &id).await.len() == 1 {
            break;
        }
        poll(&w).await;
    }
    assert_eq!(
        w.sandbox.microsoft().call_count("graph.fault"),
        1,
        "the answer was lost"
    );
    let made = outlook_drafts(&w);
    assert_eq!(
        made.len(),
        1,
        "adopted, not created again: {made:?} {:?} {}",
        w.sandbox.microsoft().call_counts(),
        common::autodraft::autodraft(&w, &id).await
    );
    assert_eq!(w.sandbox.microsoft().call_count("graph.createReply"), 1);
    let listed = drafts(&w, &id).await;
    assert_eq!(
        listed.len(),
        1,
        "{listed:?} {}",
        common::autodraft::autodraft(&w, &id).await
    );
    assert_eq!(listed[0]["source_message_id"], original.id.as_str());
    assert_eq!(listed[0]["provider_draft_id"], made[0].id.as_str());
}

#[tokio::test]
async fn auto_draft_without_mail_readwrite_says_which_permission_to_allow() {
    let w = world().await;
    let scopes = domain::scopes::IntegrationType::Outlook
        .requested_scopes()
        .into_iter()
        .filter(|scope| *scope != "Mail.ReadWrite");
    let id = w.connect_outlook(Consent::allow_only(scopes)).await["integration_id"].clone();
    let (status, problem) = put_switch(&w, &id, true).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "missing_scopes", "{problem}");
    assert_eq!(
        problem["missing_scopes"],
        serde_json::json!(["Mail.ReadWrite"])
    );
    assert!(problem["reconnect_url"].is_string(), "{problem}");
    assert_eq!(
        w.sandbox.microsoft().call_count("graph.delta"),
        0,
        "nothing read"
    );
}

#[tokio::test]
async fn mail_filed_in_junk_or_deleted_items_or_out_of_the_inbox_is_skipped_as_on_gmail() {
    let (w, id) = outlook_with_autodraft().await;
    let test = |message_id: String| {
        let w = &w;
        let id = id.clone();
        async move {
            let answer = w
                .app
                .client
                .post(
                    w.app
                        .url(&format!("/api/integrations/{id}/auto-draft/test")),
                )
                .bearer_auth(&w.tenant.key)
                .json(&serde_json::json!({ "message_id": message_id }))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200);
            answer.json::<Value>().await.unwrap()
        }
    };
    // In the inbox: it would get a draft (Graph's long ids are accepted).
    let message = deliver_to_outlook(&w, "March figures");
    let preview = test(message.id.clone()).await;
    assert!(preview["skipped_reason"].is_null(), "{preview}");
    assert_eq!(preview["subject"], "Re: March figures");

    let microsoft = w.sandbox.microsoft();
    for (folder, reason) in [
        ("junkemail", "spam_or_trash"),
        ("deleteditems", "spam_or_trash"),
        ("sentitems", "not_in_inbox"),
    ] {
        assert!(microsoft.file_message(ANN_OUTLOOK, &message.id, folder));
        let preview = test(message.id.clone()).await;
        assert_eq!(preview["skipped_reason"], reason, "{folder}: {preview}");
    }
    assert!(microsoft.file_message(ANN_OUTLOOK, &message.id, "inbox"));
    assert!(test(message.id.clone()).await["skipped_reason"].is_null());
    // The folders were read once for each opening of the mailbox.
    assert!(microsoft.call_count("graph.mailFolders.get") >= 3);
}
