//! Drafts worth sending (issue "Drafts worth sending", in part): the model
//! reads the conversation, the person's instructions and signature; every
//! draft ends with the signature; the built-in drafter answers in the
//! message's language; senders and domains to always or never draft for.

mod common;

use common::assert_problem;
use common::autodraft::{autodraft, deliver, drafts, from_bob, minutes_ago, poll, put_switch};
use common::google::{ANN, world_with};
use sandbox::{Consent, InboundMessage, LlmReply};
use serde_json::{Value, json};

async fn put_settings(w: &common::google::World, id: &str, body: Value) -> reqwest::Response {
    w.app
        .client
        .put(w.app.url(&format!("/api/integrations/{id}/auto-draft")))
        .bearer_auth(&w.tenant.key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_reply_to_the_third_message_reads_the_thread_and_instructions_and_ends_with_the_signature()
 {
    let (llm, settings) = common::autodraft::scripted_llm().await;
    let w = world_with(&settings).await;
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    w.sandbox
        .set_signature(
            ANN,
            "<div><b>Ann Example</b><br>Head of Sales &amp; Ops</div>",
        )
        .unwrap();

    // The conversation so far: Bob asks, Ann answers (her reply quotes him).
    let mut first = from_bob(
        "Project plan",
        "Could you share the project plan for Q1? We start on the 12th.",
    );
    first.message_id = Some("plan-1@bob.example".into());
    first.internal_date = Some(minutes_ago(30));
    deliver(&w, first);
    let mut answer = InboundMessage::new(
        ANN,
        "bob@example.com",
        "Re: Project plan",
        "Sure, I will send it after the review on Monday.\n\nOn Tue, Bob wrote:\n> Could you share the project plan for Q1?",
    )
    .header("In-Reply-To", "<plan-1@bob.example>")
    .header("References", "<plan-1@bob.example>")
    .labels(["SENT"]);
    answer.message_id = Some("plan-2@ann.example".into());
    answer.to = vec![ANN.into()];
    answer.internal_date = Some(minutes_ago(20));
    w.sandbox.deliver(&answer).unwrap();

    // Ann's sent mail, which her style is learnt from.
    for (to, text) in [
        (
            "carol@example.com",
            "Hey Carol,\n\nThat works, see you at noon.\n\nCheers,\nAnn",
        ),
        (
            "dan@example.com",
            "Hey Dan,\n\nGreat news, thanks for letting me know about the move. I will update the address in our records tomorrow.\n\nCheers,\nAnn",
        ),
    ] {
        let mut sent = InboundMessage::new(ANN, to, "Hello", text).labels(["SENT"]);
        sent.to = vec![ANN.into()];
        sent.internal_date = Some(minutes_ago(60));
        w.sandbox.deliver(&sent).unwrap();
    }
    let settings = put_settings(
        &w,
        &id,
        json!({"enabled": true, "instructions": "Sign as Dr. Lee. Never promise a date."}),
    )
    .await;
    assert_eq!(settings.status(), 200);
    let settings: Value = settings.json().await.unwrap();
    assert_eq!(
        settings["instructions"],
        "Sign as Dr. Lee. Never promise a date."
    );

    llm.push_reply(LlmReply::content(
        r#"{"draft_type": "follow_up", "body": "Hi Bob,\n\nThe review is done; I will check the plan and come back to you.\n\nBest regards,"}"#,
    ));
    common::autodraft::drain(&w).await;
    let style = &autodraft(&w, &id).await["style"];
    assert_eq!(style["greeting"], "Hey", "{style}");
    assert_eq!(style["sign_off"], "Cheers,", "{style}");
    assert_eq!(
        style["learned_from"], 3,
        "the two and the earlier answer: {style}"
    );
    let third = deliver(
        &w,
        from_bob(
            "Re: Project plan",
            "Any news on the plan? The team is waiting.",
        )
        .header("In-Reply-To", "<plan-2@ann.example>")
        .header("References", "<plan-1@bob.example> <plan-2@ann.example>"),
    );
    poll(&w).await;

    let requests = llm.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let system = requests[0]["messages"][0]["content"].as_str().unwrap();
    let user = requests[0]["messages"][1]["content"].as_str().unwrap();
    assert!(
        system.contains("Sign as Dr. Lee. Never promise a date."),
        "{system}"
    );
    assert!(
        system.contains("Ann Example\nHead of Sales & Ops"),
        "{system}"
    );
    assert!(
        system.contains("they close with \"Cheers,\""),
        "the style profile: {system}"
    );
    assert!(
        user.contains("Replies they wrote before, for their style only (quoted data"),
        "its examples, as data: {user}"
    );
    let earlier_at = user.find("The conversation so far").expect(user);
    let bob_asked = user
        .find("Could you share the project plan for Q1?")
        .expect(user);
    let ann_answered = user
        .find("Sure, I will send it after the review")
        .expect(user);
    let to_answer = user.find("Any news on the plan?").expect(user);
    assert!(
        earlier_at < bob_asked && bob_asked < ann_answered && ann_answered < to_answer,
        "oldest first, then the message: {user}"
    );
    assert_eq!(
        user.matches("Could you share the project plan for Q1?")
            .count(),
        1,
        "Ann's quote of Bob is left out: {user}"
    );

    let listed = drafts(&w, &id).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["source_message_id"], third.id.as_str());
    let draft = &w.sandbox.drafts(ANN).unwrap()[0];
    assert_eq!(draft.message.thread_id, third.thread_id);
    let text = draft.message.text.replace("\r\n", "\n");
    let reply = text.split("\nOn ").next().unwrap().trim_end().to_owned();
    assert!(
        reply.ends_with("Best regards,\n\nAnn Example\nHead of Sales & Ops"),
        "the draft ends with the signature: {reply:?}"
    );
}

#[tokio::test]
async fn the_builtin_drafter_answers_in_the_messages_language_and_skips_others() {
    let w = world_with(&[]).await;
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    let (status, _) = put_switch(&w, &id, true).await;
    assert_eq!(status, 200);
    let german = deliver(
        &w,
        from_bob(
            "Rechnung März",
            "Hallo Ann, könnten Sie mir bitte die Rechnung für März schicken? Danke und viele Grüße, Bob",
        ),
    );
    let dutch = deliver(
        &w,
        from_bob(
            "Vraag",
            "Hoi Ann, kun je mij de factuur van vorige maand sturen? Bedankt en groeten, Bob",
        ),
    );
    poll(&w).await;

    let drafted = w.sandbox.drafts(ANN).unwrap();
    assert_eq!(drafted.len(), 1, "only the German message is drafted");
    assert_eq!(drafted[0].message.thread_id, german.thread_id);
    let text = drafted[0].message.text.replace("\r\n", "\n");
    assert!(
        text.starts_with("Hallo Bob,\n\nvielen Dank für Ihre Nachricht zu „Rechnung März“."),
        "{text}"
    );
    assert!(text.contains("Viele Grüße\nAnn"), "{text}");
    assert!(
        text.contains(" schrieb Bob Builder <bob@example.com>:\n> Hallo Ann"),
        "{text}"
    );
    let stats = &autodraft(&w, &id).await["stats"];
    assert_eq!(
        stats["skipped_by_reason"]["unsupported_language"], 1,
        "{stats}"
    );
    assert_eq!(stats["drafts_by_type"]["document_request"], 1, "{stats}");
    let _ = dutch;
}

#[tokio::test]
async fn senders_on_the_lists_are_always_or_never_drafted_for() {
    let w = world_with(&[]).await;
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    let refused = put_settings(
        &w,
        &id,
        json!({"rules": {"always": ["partner.example"], "never": ["localhost"]}, "instructions": "x".repeat(2001)}),
    )
    .await;
    let problem = assert_problem(refused, 422, "validation_failed").await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["instructions", "rules.never[0]"], "{problem}");

    let saved = put_settings(
        &w,
        &id,
        json!({"enabled": true, "rules": {"always": ["partner.example"], "never": ["*@pushy.example"]}}),
    )
    .await;
    assert_eq!(saved.status(), 200);
    let saved: Value = saved.json().await.unwrap();
    assert_eq!(saved["rules"]["never"], json!(["*@pushy.example"]));
    assert_eq!(saved["enabled"], true);
    common::autodraft::drain(&w).await;
    assert!(
        autodraft(&w, &id).await["style"].is_null(),
        "nothing sent: nothing learnt, not a style \"set by hand\""
    );

    let list = |from: &str| {
        InboundMessage::new(
            from,
            ANN,
            "Weekly digest",
            "Could you review this week's items?",
        )
        .header("List-Id", "<digest.partner.example>")
    };
    deliver(&w, list("Digest <digest@news.partner.example>"));
    deliver(&w, list("Other list <list@elsewhere.example>"));
    deliver(
        &w,
        InboundMessage::new(
            "Pushy <sales@pushy.example>",
            ANN,
            "Quick call?",
            "Can we talk tomorrow?",
        ),
    );
    poll(&w).await;
    let stats = &autodraft(&w, &id).await["stats"];
    assert_eq!(stats["drafts_created"], 1, "the partner's list: {stats}");
    assert_eq!(stats["skipped_by_reason"]["mailing_list"], 1, "{stats}");
    assert_eq!(stats["skipped_by_reason"]["sender_excluded"], 1, "{stats}");
    // Left out, the lists stay as they are.
    let kept: Value = put_settings(&w, &id, json!({"instructions": "Be brief."}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(kept["rules"]["always"], json!(["partner.example"]));
    assert_eq!(kept["instructions"], "Be brief.");
}

/// Over its daily token budget, a mailbox's drafts come from the built-in
/// drafter, and the API and page say why.
#[tokio::test]
async fn over_the_daily_model_budget_the_builtin_drafter_writes() {
    let (llm, mut settings) = common::autodraft::scripted_llm().await;
    settings.push(("MAILWRIGHT_LLM_DAILY_TOKENS", "20".to_owned()));
    let (w, id) = common::autodraft::enabled_world(&settings).await;
    llm.push_reply(LlmReply::content(
        r#"{"draft_type": "reply", "body": "Hi Bob,\n\nThanks, noted.\n\nAnn"}"#,
    ));
    deliver(&w, from_bob("First", "Could you confirm the date?"));
    poll(&w).await;
    deliver(&w, from_bob("Second", "Could you send me the slides?"));
    poll(&w).await;

    assert_eq!(
        llm.requests().len(),
        1,
        "the second draft did not ask the model"
    );
    let listed = drafts(&w, &id).await;
    let mut generators: Vec<&str> = listed
        .iter()
        .map(|draft| draft["generator"].as_str().unwrap())
        .collect();
    generators.sort();
    assert_eq!(generators, ["builtin", "llm:test-model"]);
    let state = autodraft(&w, &id).await;
    let usage = &state["llm_usage"];
    assert_eq!(usage["model_configured"], true);
    assert_eq!(usage["daily_limit"], 20);
    assert_eq!(usage["over_budget"], true, "{usage}");
    assert!(usage["today"].as_i64().unwrap() >= 20, "{usage}");
    assert_eq!(usage["days"][0]["model"], "test-model");
    assert_eq!(usage["days"][0]["calls"], 1);
    assert!(
        state["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|event| event["kind"] == "llm_budget"),
        "{state:#}"
    );
}

/// The built-in drafter greets and signs off as the person does; a style
/// set by hand is kept, and a reset learns it again.
#[tokio::test]
async fn the_builtin_drafter_uses_the_persons_greeting_and_sign_off() {
    let w = world_with(&[]).await;
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    let mut sent = InboundMessage::new(
        ANN,
        "carol@example.com",
        "Hello",
        "Hey Carol,\n\nThat works for me, see you at noon on Friday.\n\nCheers,\nAnn",
    )
    .labels(["SENT"]);
    sent.to = vec![ANN.into()];
    w.sandbox.deliver(&sent).unwrap();
    let (status, _) = put_switch(&w, &id, true).await;
    assert_eq!(status, 200);
    common::autodraft::drain(&w).await;
    deliver(
        &w,
        from_bob("Slides", "Could you send me the slides from today?"),
    );
    poll(&w).await;
    let text = w.sandbox.drafts(ANN).unwrap()[0]
        .message
        .text
        .replace("\r\n", "\n");
    assert!(text.starts_with("Hey Bob,\n\n"), "{text}");
    assert!(text.contains("\n\nCheers,\nAnn"), "{text}");

    let set = put_settings(
        &w,
        &id,
        json!({"style": {"greeting": "Dear", "sign_off": "Kind regards,", "formality": "formal"}}),
    )
    .await;
    assert_eq!(set.status(), 200);
    let set: Value = set.json().await.unwrap();
    assert_eq!(set["style"]["greeting"], "Dear");
    assert_eq!(set["style"]["learned_from"], 0, "set by hand");
    let refused = put_settings(&w, &id, json!({"style": {"formality": "shouty"}})).await;
    let problem = assert_problem(refused, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "style.formality");
    let reset = put_settings(&w, &id, json!({"style": null})).await;
    assert_eq!(reset.status(), 200);
    common::autodraft::drain(&w).await;
    assert_eq!(
        autodraft(&w, &id).await["style"]["greeting"],
        "Hey",
        "learnt again"
    );
}

/// Cold outreach is skipped where the mailbox asks, and a model answer
/// less sure than the mailbox's threshold is not drafted.
#[tokio::test]
async fn cold_outreach_and_unsure_answers_are_skipped_with_their_reasons() {
    let (llm, settings) = common::autodraft::scripted_llm().await;
    let (w, id) = common::autodraft::enabled_world(&settings).await;
    let saved = put_settings(
        &w,
        &id,
        json!({"rules": {"skip_cold_outreach": true, "min_confidence": 60}}),
    )
    .await;
    assert_eq!(saved.status(), 200);
    let refused = put_settings(&w, &id, json!({"rules": {"min_confidence": 101}})).await;
    let problem = assert_problem(refused, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "rules.min_confidence");

    deliver(
        &w,
        InboundMessage::new(
            "Sam Seller <sam@growth.example>",
            ANN,
            "Quick question",
            "Hi Ann, I came across your company and wanted to ask: would you be open to a quick call to see how our platform can boost your sales?",
        ),
    );
    llm.push_reply(LlmReply::content(
        r#"{"draft_type": "reply", "body": "Hi Bob,\n\nMaybe.\n\nAnn", "confidence": 0.3}"#,
    ));
    deliver(
        &w,
        from_bob("Thoughts?", "What do you think about the new logo?"),
    );
    llm.push_reply(LlmReply::content(
        r#"{"draft_type": "question", "body": "Hi Bob,\n\nI will send it today.\n\nAnn", "confidence": 0.9}"#,
    ));
    deliver(&w, from_bob("Report", "Could you send me the report?"));
    poll(&w).await;

    let stats = &autodraft(&w, &id).await["stats"];
    assert_eq!(stats["skipped_by_reason"]["cold_outreach"], 1, "{stats}");
    assert_eq!(stats["skipped_by_reason"]["low_confidence"], 1, "{stats}");
    assert_eq!(stats["drafts_created"], 1, "{stats}");
    assert_eq!(llm.requests().len(), 2, "the pitch never reached the model");
}
