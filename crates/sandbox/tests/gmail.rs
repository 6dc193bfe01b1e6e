//! Gmail v1 over real HTTP, field by field.

mod common;

use std::time::Duration;

use common::*;
use mailwright_sandbox::{Attachment, Fault, InboundMessage};
use serde_json::{Value, json};

fn raw_message(from: &str, to: &str, subject: &str, extra: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\n{extra}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n{body}"
    )
}

fn header<'a>(payload: &'a Value, name: &str) -> Option<&'a str> {
    payload["headers"]
        .as_array()?
        .iter()
        .find(|h| {
            h["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .and_then(|h| h["value"].as_str())
}

#[tokio::test]
async fn profile_fields() {
    let h = start().await;
    let token = h.access_token(ANN, GMAIL_READONLY).await;
    h.sandbox
        .deliver(&InboundMessage::new("x@outside.test", ANN, "Hi", "hello"))
        .unwrap();
    let (status, profile) = h.gmail_get(&token, "profile").await;
    assert_eq!(status, 200);
    assert_eq!(profile["emailAddress"], ANN);
    assert_eq!(profile["messagesTotal"], 1);
    assert_eq!(profile["threadsTotal"], 1);
    let history_id = profile["historyId"]
        .as_str()
        .expect("historyId is a string");
    assert_eq!(
        history_id.parse::<u64>().unwrap(),
        h.sandbox.history_id(ANN).unwrap()
    );
    // userId may be the account's own email too.
    let response = h
        .http
        .get(h.url(&format!("/gmail/v1/users/{ANN}/profile")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(h.sandbox.quota_used(ANN), 2, "getProfile costs 1 unit");
}

#[tokio::test]
async fn another_users_mailbox_is_forbidden() {
    let h = start().await;
    let token = h.access_token(ANN, GMAIL_READONLY).await;
    let response = h
        .http
        .get(h.url(&format!("/gmail/v1/users/{BOB}/profile")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], 403);
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(body["error"]["errors"][0]["reason"], "forbidden");
}

#[tokio::test]
async fn messages_list_get_and_formats() {
    let h = start().await;
    let token = h.access_token(ANN, GMAIL_READONLY).await;
    let delivered = h
        .sandbox
        .deliver(
            &InboundMessage::new(
                "Shop <deals@shop.test>",
                ANN,
                "Big sale",
                "Everything's 50% off & more",
            )
            .header("List-Unsubscribe", "<mailto:unsub@shop.test>")
            .labels(["INBOX", "UNREAD", "CATEGORY_PROMOTIONS"]),
        )
        .unwrap();
    let id = &delivered[0].id;

    let (status, list) = h.gmail_get(&token, "messages").await;
    assert_eq!(status, 200);
    assert_eq!(list["messages"], json!([{ "id": id, "threadId": id }]));
    assert_eq!(list["resultSizeEstimate"], 1);
    assert!(list.get("nextPageToken").is_none());

    let (status, full) = h.gmail_get(&token, &format!("messages/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(full["id"], *id);
    assert_eq!(full["threadId"], *id);
    assert_eq!(
        full["labelIds"],
        json!(["INBOX", "UNREAD", "CATEGORY_PROMOTIONS"])
    );
    assert_eq!(full["snippet"], "Everything&#39;s 50% off &amp; more");
    assert!(full["historyId"].is_string());
    let internal: i64 = full["internalDate"].as_str().unwrap().parse().unwrap();
    assert!((chrono::Utc::now().timestamp_millis() - internal).abs() < 60_000);
    assert!(full["sizeEstimate"].as_u64().unwrap() > 100);
    assert!(full.get("raw").is_none());
    let payload = &full["payload"];
    assert_eq!(payload["partId"], "");
    assert_eq!(payload["mimeType"], "text/plain");
    assert_eq!(payload["filename"], "");
    assert_eq!(header(payload, "Subject"), Some("Big sale"));
    assert_eq!(header(payload, "From"), Some("Shop <deals@shop.test>"));
    assert_eq!(
        header(payload, "List-Unsubscribe"),
        Some("<mailto:unsub@shop.test>")
    );
    assert_eq!(payload["body"]["size"], 27);
    assert_eq!(
        b64url_decode(payload["body"]["data"].as_str().unwrap()),
        b"Everything's 50% off & more"
    );

    let (_, metadata) = h.gmail_get(&token, &format!("messages/{id}?format=metadata&metadataHeaders=Subject&metadataHeaders=list-unsubscribe")).await;
    let names: Vec<&str> = metadata["payload"]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Subject", "List-Unsubscribe"]);
    assert!(
        metadata["payload"].get("body").is_none() && metadata["payload"].get("parts").is_none()
    );

    let (_, minimal) = h
        .gmail_get(&token, &format!("messages/{id}?format=minimal"))
        .await;
    assert!(minimal.get("payload").is_none() && minimal.get("raw").is_none());
    assert_eq!(minimal["labelIds"], full["labelIds"]);

    let (_, raw) = h
        .gmail_get(&token, &format!("messages/{id}?format=raw"))
        .await;
    assert!(raw.get("payload").is_none());
    let source = String::from_utf8(b64url_decode(raw["raw"].as_str().unwrap())).unwrap();
    assert!(source.contains("Subject: Big sale\r\n"));

    let (status, body) = h.gmail_get(&token, "messages/ffffffffffffffff").await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({ "error": { "code": 404, "message": "Requested entity was not found.", "errors": [{ "message": "Requested entity was not found.", "domain": "global", "reason": "notFound" }], "status": "NOT_FOUND" } })
    );
    let (status, body) = h
        .gmail_get(&token, &format!("messages/{id}?format=bogus"))
        .await;
    assert_eq!(
        (status, body["error"]["status"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );
}

#[tokio::test]
async fn messages_list_queries_labels_and_paging() {
    let h = start().await;
    let token = h.access_token(ANN, GMAIL_READONLY).await;
    let old = h
        .sandbox
        .deliver(&InboundMessage {
            internal_date: Some(chrono::Utc::now() - chrono::Duration::days(10)),
            ..InboundMessage::new("a@outside.test", ANN, "Old news", "old")
        })
        .unwrap();
    let tagged = h
        .sandbox
        .deliver(&InboundMessage {
            message_id: Some("needle@outside.test".into()),
            ..InboundMessage::new("b@outside.test", ANN, "Needle", "find me")
        })
        .unwrap();
    let spam = h
        .sandbox
        .deliver(&InboundMessage::new("c@spam.test", ANN, "Spam", "buy").labels(["SPAM"]))
        .unwrap();
    let ids = |v: &Value| -> Vec<String> {
        v["messages"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| m["id"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };

    let (_, all) = h.gmail_get(&token, "messages").await;
    assert_eq!(
        ids(&all),
        [tagged[0].id.clone(), old[0].id.clone()],
        "newest first, spam excluded"
    );
    let (_, with_spam) = h.gmail_get(&token, "messages?includeSpamTrash=true").await;
    assert_eq!(with_spam["resultSizeEstimate"], 3);
    let (_, by_msgid) = h
        .gmail_get(
            &token,
            "messages?q=rfc822msgid%3A%3Cneedle%40outside.test%3E",
        )
        .await;
    assert_eq!(ids(&by_msgid), [tagged[0].id.clone()]);
    let (_, recent) = h
        .gmail_get(&token, "messages?q=newer_than%3A2d%20in%3Ainbox")
        .await;
    assert_eq!(ids(&recent), [tagged[0].id.clone()]);
    let after = (chrono::Utc::now() - chrono::Duration::days(1)).timestamp();
    let (_, after_q) = h
        .gmail_get(&token, &format!("messages?q=after%3A{after}"))
        .await;
    assert_eq!(ids(&after_q), [tagged[0].id.clone()]);
    let (_, spam_only) = h.gmail_get(&token, "messages?labelIds=SPAM").await;
    assert_eq!(ids(&spam_only), [spam[0].id.clone()]);
    let (_, none) = h
        .gmail_get(&token, "messages?q=rfc822msgid%3Anothing")
        .await;
    assert_eq!(
        none,
        json!({ "resultSizeEstimate": 0 }),
        "Gmail omits `messages` when empty"
    );

    let (_, page1) = h.gmail_get(&token, "messages?maxResults=1").await;
    assert_eq!(ids(&page1), [tagged[0].id.clone()]);
    let next = page1["nextPageToken"].as_str().unwrap();
    let (_, page2) = h
        .gmail_get(&token, &format!("messages?maxResults=1&pageToken={next}"))
        .await;
    assert_eq!(ids(&page2), [old[0].id.clone()]);
    assert!(page2.get("nextPageToken").is_none());
    assert_eq!(h.sandbox.quota_used(ANN), 5 * 9, "messages.list costs 5");
}

#[tokio::test]
async fn send_delivers_and_threads_like_gmail() {
    let h = start().await;
    let ann = h.access_token(ANN, GMAIL_MODIFY).await;
    let bob = h.access_token(BOB, GMAIL_MODIFY).await;
    let inbound = h
        .sandbox
        .deliver(&InboundMessage {
            message_id: Some("orig@outside.test".into()),
            ..InboundMessage::new("carol@outside.test", ANN, "Quote request", "Can you quote?")
        })
        .unwrap();
    let thread_id = inbound[0].thread_id.clone();

    // A proper reply joins the thread.
    let reply = raw_message(
        ANN,
        &format!("carol@outside.test, {BOB}"),
        "Re: Quote request",
        "In-Reply-To: <orig@outside.test>\r\nReferences: <orig@outside.test>\r\n",
        "Sure.",
    );
    let (status, sent) = h
        .gmail_post(
            &ann,
            "messages/send",
            &json!({ "raw": b64url(&reply), "threadId": thread_id }),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    let keys: Vec<&String> = sent.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 3, "send answers id, threadId, labelIds: {sent}");
    assert_eq!(sent["threadId"], thread_id);
    assert_eq!(sent["labelIds"], json!(["SENT"]));

    // Subject changed: new thread even with threadId and references.
    let other = raw_message(
        ANN,
        "carol@outside.test",
        "Different topic",
        "References: <orig@outside.test>\r\n",
        "x",
    );
    let (_, sent2) = h
        .gmail_post(
            &ann,
            "messages/send",
            &json!({ "raw": b64url(&other), "threadId": thread_id }),
        )
        .await;
    assert_ne!(sent2["threadId"], thread_id);
    assert_eq!(sent2["threadId"], sent2["id"]);
    // No references: new thread.
    let bare = raw_message(ANN, "carol@outside.test", "Re: Quote request", "", "x");
    let (_, sent3) = h
        .gmail_post(
            &ann,
            "messages/send",
            &json!({ "raw": b64url(&bare), "threadId": thread_id }),
        )
        .await;
    assert_ne!(sent3["threadId"], thread_id);

    // The thread holds the inbound message and the reply, oldest first.
    let (status, thread) = h.gmail_get(&ann, &format!("threads/{thread_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(thread["id"], thread_id);
    assert!(thread["historyId"].is_string());
    let messages = thread["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["id"], inbound[0].id);
    assert_eq!(messages[1]["id"], sent["id"]);

    // Bob, a sandbox account among the recipients, got it in INBOX.
    let (_, bob_inbox) = h.gmail_get(&bob, "messages?labelIds=INBOX").await;
    assert_eq!(bob_inbox["resultSizeEstimate"], 1);

    // Bcc: delivered, but hidden from the recipients' copies.
    let secret = raw_message(
        ANN,
        "carol@outside.test",
        "Hush",
        &format!("Bcc: {BOB}\r\n"),
        "x",
    );
    let (status, _) = h
        .gmail_post(&ann, "messages/send", &json!({ "raw": b64url(&secret) }))
        .await;
    assert_eq!(status, 200);
    let bob_copy = h
        .sandbox
        .messages(BOB)
        .unwrap()
        .into_iter()
        .find(|m| m.subject == "Hush")
        .unwrap();
    assert!(bob_copy.bcc.is_empty() && !bob_copy.raw.contains("Bcc:"));
    let ann_copy = h
        .sandbox
        .sent_messages(ANN)
        .unwrap()
        .into_iter()
        .find(|m| m.subject == "Hush")
        .unwrap();
    assert_eq!(ann_copy.bcc, [BOB]);
    let sent_view = h.sandbox.sent_messages(ANN).unwrap();
    assert_eq!(sent_view.len(), 4);
    assert_eq!(h.sandbox.sent_count(ANN).unwrap(), 4);
    assert!(
        h.sandbox.messages(ANN).unwrap().len() > 4,
        "received mail is not counted"
    );
    assert_eq!(sent_view[0].subject, "Re: Quote request");
    assert!(sent_view[0].message_id.is_some(), "Gmail adds a Message-ID");
    assert!(sent_view[0].raw.contains("Date: "), "Gmail adds a Date");
    assert_eq!(h.sandbox.quota_used(ANN), 400 + 10);
}

#[tokio::test]
async fn inbound_reply_joins_the_sent_thread() {
    let h = start().await;
    let ann = h.access_token(ANN, GMAIL_MODIFY).await;
    let first = raw_message(
        ANN,
        "dave@outside.test",
        "Hello Dave",
        "Message-ID: <first@example.com>\r\n",
        "hi",
    );
    let (_, sent) = h
        .gmail_post(&ann, "messages/send", &json!({ "raw": b64url(&first) }))
        .await;
    let delivered = h
        .sandbox
        .deliver(
            &InboundMessage::new("dave@outside.test", ANN, "RE: Hello Dave", "hey")
                .header("In-Reply-To", "<first@example.com>")
                .header("References", "<first@example.com>"),
        )
        .unwrap();
    assert_eq!(delivered[0].thread_id, sent["threadId"].as_str().unwrap());
    let unrelated = h
        .sandbox
        .deliver(&InboundMessage::new(
            "dave@outside.test",
            ANN,
            "Hello Dave",
            "no refs",
        ))
        .unwrap();
    assert_ne!(unrelated[0].thread_id, delivered[0].thread_id);
}

#[tokio::test]
async fn drafts_create_list_get_delete() {
    let h = start().await;
    let token = h.access_token(ANN, GMAIL_COMPOSE).await;
    let raw = raw_message(ANN, "erin@outside.test", "Draft subject", "", "Draft body");
    let (status, draft) = h
        .gmail_post(
            &token,
            "drafts",
            &json!({ "message": { "raw": b64url(&raw) } }),
        )
        .await;
    assert_eq!(status, 200, "{draft}");
    let draft_id = draft["id"].as_str().unwrap().to_owned();
    assert!(draft_id.starts_with('r'));
    assert_eq!(draft["message"]["labelIds"], json!(["DRAFT"]));
    assert_eq!(draft["message"]["threadId"], draft["message"]["id"]);

    let (status, list) = h.gmail_get(&token, "drafts").await;
    assert_eq!(status, 200);
    assert_eq!(
        list["drafts"],
        json!([{ "id": draft_id, "message": { "id": draft["message"]["id"], "threadId": draft["message"]["threadId"] } }])
    );
    assert_eq!(list["resultSizeEstimate"], 1);

    let (status, got) = h.gmail_get(&token, &format!("drafts/{draft_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(got["id"], draft_id);
    assert_eq!(
        header(&got["message"]["payload"], "Subject"),
        Some("Draft subject")
    );
    let (_, raw_draft) = h
        .gmail_get(&token, &format!("drafts/{draft_id}?format=raw"))
        .await;
    assert_eq!(
        String::from_utf8(b64url_decode(raw_draft["message"]["raw"].as_str().unwrap())).unwrap(),
        raw
    );

    let drafts = h.sandbox.drafts(ANN).unwrap();
    assert_eq!(drafts[0].draft_id, draft_id);
    assert_eq!(drafts[0].message.text, "Draft body");

    // gmail.compose does not cover messages.get (discovery document).
    let (status, body) = h
        .gmail_get(
            &token,
            &format!("messages/{}", draft["message"]["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({ "error": { "code": 403, "message": "Request had insufficient authentication scopes.", "errors": [{ "message": "Insufficient Permission", "domain": "global", "reason": "insufficientPermissions" }], "status": "PERMISSION_DENIED" } })
    );

    let response = h
        .http
        .delete(h.url(&format!("/gmail/v1/users/me/drafts/{draft_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(response.text().await.unwrap(), "");
    let (status, _) = h.gmail_get(&token, &format!("drafts/{draft_id}")).await;
    assert_eq!(status, 404);
    let (_, list) = h.gmail_get(&token, "drafts").await;
    assert_eq!(list, json!({ "resultSizeEstimate": 0 }));
}

#[tokio::test]
async fn drafts_list_filters_by_q() {
    let h = start().await;
    let token = h.access_token(ANN, GMAIL_COMPOSE).await;
    for subject in ["Alpha", "Beta"] {
        let raw = raw_message(ANN, BOB, subject, "", "x");
        h.gmail_post(
            &token,
            "drafts",
            &json!({ "message": { "raw": b64url(&raw) } }),
        )
        .await;
    }
    let (_, list) = h.gmail_get(&token, "drafts?q=subject%3Abeta").await;
    assert_eq!(list["resultSizeEstimate"], 1);
    let draft_id = list["drafts"][0]["id"].as_str().unwrap();
    assert_eq!(h.sandbox.drafts(ANN).unwrap()[1].draft_id, draft_id);
}

#[tokio::test]
async fn hostile_inputs_get_errors_not_panics() {
    let h = start().await;
    let token = h.access_token(ANN, GMAIL_MODIFY).await;
    for path in [
        "messages?q=newer_than%3A99999999999999999y",
        "messages?q=older_than%3A9223372036854775807d%20after%3A99999999999999999999",
        "messages?pageToken=18446744073709551615&maxResults=500",
        "history?startHistoryId=18446744073709551615&pageToken=18446744073709551615",
    ] {
        let (status, body) = h.gmail_get(&token, path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    for (path, expected) in [
        ("messages?maxResults=lots", 400),
        ("messages?pageToken=-1", 400),
        ("history?startHistoryId=abc", 400),
        ("messages/not..an..id", 400),
        ("threads/nothing", 404),
        ("drafts/nothing", 404),
    ] {
        let (status, body) = h.gmail_get(&token, path).await;
        assert_eq!(status, expected, "{path}: {body}");
        assert_eq!(body["error"]["code"], expected, "{path}: {body}");
    }
    let response = h
        .http
        .post(h.url("/_sandbox/clock/advance"))
        .json(&json!({ "seconds": u64::MAX }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        h.gmail_get(&token, "profile").await.0,
        200,
        "an absurd clock jump is ignored"
    );
    let response = h
        .http
        .post(h.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("%%%&&==")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = h
        .http
        .post(h.url("/o/oauth2/v2/auth"))
        .body("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn draft_joins_thread_only_when_headers_and_subject_qualify() {
    let h = start().await;
    let token = h.access_token(ANN, GMAIL_MODIFY).await;
    let inbound = h
        .sandbox
        .deliver(&InboundMessage {
            message_id: Some("q1@outside.test".into()),
            ..InboundMessage::new("f@outside.test", ANN, "Invoice 42", "pay")
        })
        .unwrap();
    let thread_id = &inbound[0].thread_id;
    let good = raw_message(
        ANN,
        "f@outside.test",
        "Fwd: Re: Invoice 42",
        "References: <q1@outside.test>\r\n",
        "ok",
    );
    let (_, draft) = h
        .gmail_post(
            &token,
            "drafts",
            &json!({ "message": { "raw": b64url(&good), "threadId": thread_id } }),
        )
        .await;
    assert_eq!(draft["message"]["threadId"], *thread_id);
    let (_, unthreaded) = h
        .gmail_post(
            &token,
            "drafts",
            &json!({ "message": { "raw": b64url(&good) } }),
        )
        .await;
    assert_ne!(
        unthreaded["message"]["threadId"], *thread_id,
        "no threadId, no thread"
    );
}

#[tokio::test]
async fn malformed_send_and_draft_requests_get_google_errors() {
    let h = start().await;
    let token = h.access_token(ANN, GMAIL_MODIFY).await;
    let cases = [
        (json!({}), "INVALID_ARGUMENT"),
        (json!({ "raw": "" }), "INVALID_ARGUMENT"),
        (json!({ "raw": "!!! not base64 !!!" }), "INVALID_ARGUMENT"),
        (json!({ "raw": 42 }), "INVALID_ARGUMENT"),
        (
            json!({ "raw": b64url("Subject: nobody to send to\r\n\r\nhi") }),
            "INVALID_ARGUMENT",
        ),
    ];
    for (body, status_text) in cases {
        let (status, error) = h.gmail_post(&token, "messages/send", &body).await;
        assert_eq!(status, 400, "{body} -> {error}");
        assert_eq!(error["error"]["code"], 400);
        assert_eq!(error["error"]["status"], status_text);
        assert!(error["error"]["errors"][0]["reason"].is_string());
    }
    let (_, missing) = h.gmail_post(&token, "messages/send", &json!({})).await;
    assert_eq!(
        missing["error"]["message"],
        "'raw' RFC822 payload message string or uploading message via /upload/* URL required"
    );
    let response = h
        .http
        .post(h.url("/gmail/v1/users/me/messages/send"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["errors"][0]["reason"], "parseError");
    let (status, _) = h
        .gmail_post(&token, "drafts", &json!({ "message": {} }))
        .await;
    assert_eq!(status, 400);
    let (status, _) = h
        .gmail_post(&token, "drafts", &json!({ "nothing": true }))
        .await;
    assert_eq!(status, 400);
    assert!(h.sandbox.sent_messages(ANN).unwrap().is_empty());
}

#[tokio::test]
async fn auth_errors_missing_expired_and_revoked() {
    let h = start().await;
    let token = h.access_token(ANN, GMAIL_READONLY).await;
    let response = h
        .http
        .get(h.url("/gmail/v1/users/me/profile"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["errors"][0]["reason"], "required");
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");

    assert!(h.sandbox.expire_access_token(&token));
    let (status, body) = h.gmail_get(&token, "profile").await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({ "error": {
            "code": 401,
            "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
            "errors": [{ "message": "Invalid Credentials", "domain": "global", "reason": "authError", "location": "Authorization", "locationType": "header" }],
            "status": "UNAUTHENTICATED"
        } })
    );

    let token = h.access_token(ANN, GMAIL_READONLY).await;
    assert!(h.sandbox.revoke_grant(ANN, CLIENT_ID));
    let (status, _) = h.gmail_get(&token, "profile").await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn scope_table_is_enforced_per_method() {
    let h = start().await;
    let send_only = h
        .access_token(ANN, "https://www.googleapis.com/auth/gmail.send")
        .await;
    let raw = raw_message(ANN, BOB, "s", "", "b");
    let (status, _) = h
        .gmail_post(&send_only, "messages/send", &json!({ "raw": b64url(&raw) }))
        .await;
    assert_eq!(status, 200);
    let (status, _) = h
        .gmail_post(
            &send_only,
            "drafts",
            &json!({ "message": { "raw": b64url(&raw) } }),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = h.gmail_get(&send_only, "messages").await;
    assert_eq!(status, 403);

    let metadata = h
        .access_token(ANN, "https://www.googleapis.com/auth/gmail.metadata")
        .await;
    let (status, _) = h.gmail_get(&metadata, "messages").await;
    assert_eq!(status, 200);
    let (status, body) = h.gmail_get(&metadata, "messages?q=in%3Ainbox").await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = h.gmail_get(&metadata, "history?startHistoryId=1").await;
    assert_ne!(status, 403);
}

#[tokio::test]
async fn history_list_and_expired_start_history_id() {
    let h = start().await;
    let token = h.access_token(ANN, GMAIL_READONLY).await;
    let (_, profile) = h.gmail_get(&token, "profile").await;
    let start_id = profile["historyId"].as_str().unwrap().to_owned();
    let first = h
        .sandbox
        .deliver(&InboundMessage::new("g@outside.test", ANN, "One", "1"))
        .unwrap();
    let second = h
        .sandbox
        .deliver(&InboundMessage::new("g@outside.test", ANN, "Two", "2").labels(["SPAM"]))
        .unwrap();

    let (status, history) = h
        .gmail_get(
            &token,
            &format!("history?startHistoryId={start_id}&historyTypes=messageAdded"),
        )
        .await;
    assert_eq!(status, 200, "{history}");
    let records = history["history"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    let record = &records[0];
    assert!(
        record["id"].as_str().unwrap().parse::<u64>().unwrap() > start_id.parse::<u64>().unwrap()
    );
    assert_eq!(
        record["messages"],
        json!([{ "id": first[0].id, "threadId": first[0].thread_id }])
    );
    assert_eq!(
        record["messagesAdded"],
        json!([{ "message": { "id": first[0].id, "threadId": first[0].thread_id, "labelIds": ["INBOX", "UNREAD"] } }])
    );
    assert_eq!(
        history["historyId"],
        h.sandbox.history_id(ANN).unwrap().to_string()
    );

    let (_, inbox_only) = h
        .gmail_get(
            &token,
            &format!("history?startHistoryId={start_id}&labelId=INBOX"),
        )
        .await;
    assert_eq!(inbox_only["history"].as_array().unwrap().len(), 1);
    let (_, paged) = h
        .gmail_get(
            &token,
            &format!("history?startHistoryId={start_id}&maxResults=1"),
        )
        .await;
    assert_eq!(paged["history"][0]["messages"][0]["id"], first[0].id);
    let next = paged["nextPageToken"].as_str().unwrap();
    let (_, paged2) = h
        .gmail_get(
            &token,
            &format!("history?startHistoryId={start_id}&maxResults=1&pageToken={next}"),
        )
        .await;
    assert_eq!(paged2["history"][0]["messages"][0]["id"], second[0].id);

    let latest = history["historyId"].as_str().unwrap().to_owned();
    let (_, empty) = h
        .gmail_get(&token, &format!("history?startHistoryId={latest}"))
        .await;
    assert_eq!(empty, json!({ "historyId": latest }));

    let (status, body) = h.gmail_get(&token, "history").await;
    assert_eq!((status, body["error"]["code"].as_i64()), (400, Some(400)));

    h.sandbox.expire_history(ANN).unwrap();
    let (status, body) = h
        .gmail_get(&token, &format!("history?startHistoryId={start_id}"))
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["errors"][0]["reason"], "notFound");
    assert_eq!(body["error"]["status"], "NOT_FOUND");
    let (status, _) = h
        .gmail_get(&token, &format!("history?startHistoryId={latest}"))
        .await;
    assert_eq!(status, 200, "the current historyId stays valid");
    assert_eq!(h.sandbox.call_count("history.list"), 8);
}

#[tokio::test]
async fn watch_and_stop() {
    let h = start().await;
    let token = h.access_token(ANN, GMAIL_READONLY).await;
    let (status, body) = h
        .gmail_post(
            &token,
            "watch",
            &json!({ "topicName": "projects/p/topics/gmail", "labelIds": ["INBOX"] }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["historyId"],
        h.sandbox.history_id(ANN).unwrap().to_string()
    );
    let expiration: i64 = body["expiration"].as_str().unwrap().parse().unwrap();
    let days = (expiration - chrono::Utc::now().timestamp_millis()) as f64 / 86_400_000.0;
    assert!((6.9..7.1).contains(&days));
    let (status, _) = h.gmail_post(&token, "watch", &json!({})).await;
    assert_eq!(status, 400);
    let response = h
        .http
        .post(h.url("/gmail/v1/users/me/stop"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(h.sandbox.quota_used(ANN), 100 + 100 + 50);
}

#[tokio::test]
async fn injected_faults_hit_the_next_calls_only() {
    let h = start().await;
    let token = h.access_token(ANN, GMAIL_READONLY).await;
    h.sandbox
        .inject_fault("messages.list", Fault::RateLimited, 2);
    h.sandbox.inject_fault("getProfile", Fault::BackendError, 1);
    for _ in 0..2 {
        let (status, body) = h.gmail_get(&token, "messages").await;
        assert_eq!(status, 429);
        assert_eq!(
            body["error"]["errors"][0],
            json!({ "message": "Rate Limit Exceeded", "domain": "usageLimits", "reason": "rateLimitExceeded" })
        );
        assert_eq!(body["error"]["code"], 429);
    }
    let (status, _) = h.gmail_get(&token, "messages").await;
    assert_eq!(status, 200);
    let (status, body) = h.gmail_get(&token, "profile").await;
    assert_eq!(status, 500);
    assert_eq!(body["error"]["errors"][0]["reason"], "backendError");
    let (status, _) = h.gmail_get(&token, "profile").await;
    assert_eq!(status, 200);
    assert_eq!(h.sandbox.call_count("messages.list"), 3);
    assert_eq!(
        h.sandbox.quota_used(ANN),
        5 + 1,
        "failed calls are not charged"
    );

    h.sandbox
        .inject_fault("messages.list", Fault::UserRateLimited, 1);
    let (status, body) = h.gmail_get(&token, "messages").await;
    assert_eq!(
        (status, body["error"]["errors"][0]["reason"].as_str()),
        (403, Some("userRateLimitExceeded"))
    );

    // A delay longer than the client's timeout looks like a hung server.
    h.sandbox
        .inject_fault("getProfile", Fault::Delay { millis: 3_000 }, 1);
    let err = h
        .http
        .get(h.url("/gmail/v1/users/me/profile"))
        .bearer_auth(&token)
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());

    h.sandbox
        .inject_fault("oauth.token", Fault::BackendError, 1);
    let (status, _) = h
        .post_form("/token", &[("grant_type", "refresh_token")])
        .await;
    assert_eq!(status, 500);
}

#[tokio::test]
async fn labels_list_has_system_labels() {
    let h = start().await;
    let token = h.access_token(ANN, GMAIL_READONLY).await;
    let (status, body) = h.gmail_get(&token, "labels").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = body["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    for label in [
        "INBOX",
        "SENT",
        "DRAFT",
        "SPAM",
        "TRASH",
        "UNREAD",
        "CATEGORY_PROMOTIONS",
    ] {
        assert!(ids.contains(&label), "{label}");
    }
    assert_eq!(body["labels"][0]["type"], "system");
}

const GMAIL_SEND: &str = "https://www.googleapis.com/auth/gmail.send";
const GMAIL_LABELS: &str = "https://www.googleapis.com/auth/gmail.labels";

fn label_ids(message: &Value) -> Vec<&str> {
    message["labelIds"]
        .as_array()
        .map(|ids| ids.iter().map(|id| id.as_str().unwrap()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn labels_create_then_list_and_name_conflicts() {
    let h = start().await;
    let token = h.access_token(ANN, GMAIL_MODIFY).await;
    let (status, label) = h
        .gmail_post(&token, "labels", &json!({ "name": "Invoices" }))
        .await;
    assert_eq!(status, 200, "{label}");
    assert_eq!(
        label,
        json!({ "id": "Label_1", "name": "Invoices", "type": "user", "labelListVisibility": "labelShow", "messageListVisibility": "show" })
    );
    let (status, second) = h
        .gmail_post(
            &token,
            "labels",
            &json!({ "name": "Hidden", "labelListVisibility": "labelHide", "messageListVisibility": "hide" }),
        )
        .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["id"], "Label_2");
    assert_eq!(second["labelListVisibility"], "labelHide");

    let (status, list) = h.gmail_get(&token, "labels").await;
    assert_eq!(status, 200);
    let labels = list["labels"].as_array().unwrap();
    assert!(
        labels
            .iter()
            .any(|l| l["id"] == "INBOX" && l["type"] == "system")
    );
    let user: Vec<&Value> = labels.iter().filter(|l| l["type"] == "user").collect();
    assert_eq!(user, [&label, &second]);

    // Taken names, whatever their case, and system labels' names: 409.
    for name in ["Invoices", "invoices", "INBOX", "Unread", "category_social"] {
        let (status, body) = h
            .gmail_post(&token, "labels", &json!({ "name": name }))
            .await;
        assert_eq!(status, 409, "{name}: {body}");
        assert_eq!(
            body,
            json!({ "error": { "code": 409, "message": "Label name exists or conflicts", "errors": [{ "message": "Label name exists or conflicts", "domain": "global", "reason": "duplicate" }], "status": "ALREADY_EXISTS" } })
        );
    }
    for body in [json!({}), json!({ "name": "" }), json!({ "name": "  " })] {
        let (status, answer) = h.gmail_post(&token, "labels", &body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["errors"][0]["reason"], "invalidArgument");
        assert_eq!(answer["error"]["status"], "INVALID_ARGUMENT");
    }
    let (status, _) = h
        .gmail_post(
            &token,
            "labels",
            &json!({ "name": "X", "labelListVisibility": "sometimes" }),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        h.sandbox.labels(ANN).unwrap().len(),
        2,
        "failed creates add nothing"
    );
    assert_eq!(h.sandbox.call_count("labels.create"), 11);
    // Labels are per mailbox: Bob's first label is Label_1 too.
    assert_eq!(
        h.sandbox.create_label(BOB, "Invoices").unwrap().id,
        "Label_1"
    );
    // Quota: 2 successful creates, 1 list; failures after auth are charged.
    assert_eq!(h.sandbox.quota_used(ANN), 11 * 5 + 1);
}

#[tokio::test]
async fn messages_modify_adds_and_removes_user_and_system_labels() {
    let h = start().await;
    let token = h.access_token(ANN, GMAIL_MODIFY).await;
    let delivered = h
        .sandbox
        .deliver(&InboundMessage::new(
            "a@outside.test",
            ANN,
            "Invoice 7",
            "due",
        ))
        .unwrap();
    let id = delivered[0].id.clone();
    let (_, label) = h
        .gmail_post(&token, "labels", &json!({ "name": "Invoices" }))
        .await;
    let label_id = label["id"].as_str().unwrap().to_owned();
    let before = h.sandbox.history_id(ANN).unwrap();

    let (status, modified) = h
        .gmail_post(
            &token,
            &format!("messages/{id}/modify"),
            &json!({ "addLabelIds": [label_id, "STARRED", label_id], "removeLabelIds": ["UNREAD"] }),
        )
        .await;
    assert_eq!(status, 200, "{modified}");
    assert_eq!(
        modified,
        json!({ "id": id, "threadId": delivered[0].thread_id, "labelIds": ["INBOX", label_id, "STARRED"] })
    );
    let after = h.sandbox.history_id(ANN).unwrap();
    assert!(after > before, "a change bumps the history id");
    let (_, full) = h.gmail_get(&token, &format!("messages/{id}")).await;
    assert_eq!(label_ids(&full), ["INBOX", label_id.as_str(), "STARRED"]);
    assert_eq!(full["historyId"], after.to_string());
    let (_, listed) = h
        .gmail_get(&token, &format!("messages?labelIds={label_id}"))
        .await;
    assert_eq!(listed["resultSizeEstimate"], 1);
    let (_, unread) = h.gmail_get(&token, "messages?q=is%3Aunread").await;
    assert_eq!(unread["resultSizeEstimate"], 0);

    // Tests see ids and names through the controls.
    let view = &h.sandbox.messages(ANN).unwrap()[0];
    assert_eq!(view.label_ids, ["INBOX", label_id.as_str(), "STARRED"]);
    assert_eq!(view.label_names, ["INBOX", "Invoices", "STARRED"]);
    let labels = h.sandbox.labels(ANN).unwrap();
    assert_eq!(
        (labels[0].id.as_str(), labels[0].name.as_str()),
        (label_id.as_str(), "Invoices")
    );

    // Removing: the user label and INBOX (archiving).
    let (status, modified) = h
        .gmail_post(
            &token,
            &format!("messages/{id}/modify"),
            &json!({ "removeLabelIds": [label_id, "INBOX"] }),
        )
        .await;
    assert_eq!(status, 200, "{modified}");
    assert_eq!(label_ids(&modified), ["STARRED"]);
    // Nothing to change: 200, same labels, history id unchanged.
    let unchanged = h.sandbox.history_id(ANN).unwrap();
    let (status, same) = h
        .gmail_post(
            &token,
            &format!("messages/{id}/modify"),
            &json!({ "addLabelIds": ["STARRED"] }),
        )
        .await;
    assert_eq!((status, label_ids(&same)), (200, vec!["STARRED"]));
    assert_eq!(h.sandbox.history_id(ANN).unwrap(), unchanged);

    // History: labelAdded/labelRemoved records, which a messageAdded
    // query (how Mailwright syncs) does not see.
    let (_, history) = h
        .gmail_get(&token, &format!("history?startHistoryId={before}"))
        .await;
    let records = history["history"].as_array().unwrap();
    assert_eq!(records.len(), 3, "{history}");
    assert_eq!(
        records[0]["labelsAdded"],
        json!([{ "message": { "id": id, "threadId": id, "labelIds": ["INBOX", label_id, "STARRED"] }, "labelIds": [label_id, "STARRED"] }])
    );
    assert_eq!(
        records[1]["labelsRemoved"][0]["labelIds"],
        json!(["UNREAD"])
    );
    assert_eq!(
        records[2]["labelsRemoved"][0]["labelIds"],
        json!([label_id, "INBOX"])
    );
    assert!(records[0]["id"].as_str().unwrap() < records[1]["id"].as_str().unwrap());
    let (_, added_only) = h
        .gmail_get(
            &token,
            &format!("history?startHistoryId={before}&historyTypes=messageAdded&labelId=INBOX"),
        )
        .await;
    assert_eq!(added_only, json!({ "historyId": unchanged.to_string() }));
    let (_, label_added) = h
        .gmail_get(
            &token,
            &format!("history?startHistoryId={before}&historyTypes=labelAdded&labelId={label_id}"),
        )
        .await;
    assert_eq!(label_added["history"].as_array().unwrap().len(), 1);

    assert_eq!(h.sandbox.call_count("messages.modify"), 3);
    // labels.create, 3 × messages.modify, messages.get, 2 × messages.list
    // and 3 × history.list.
    assert_eq!(h.sandbox.quota_used(ANN), 5 + 3 * 5 + 5 + 2 * 5 + 3 * 2);
}

#[tokio::test]
async fn messages_modify_rejects_unknown_labels_messages_and_empty_requests() {
    let h = start().await;
    let token = h.access_token(ANN, GMAIL_MODIFY).await;
    let delivered = h
        .sandbox
        .deliver(&InboundMessage::new("a@outside.test", ANN, "Hi", "x"))
        .unwrap();
    let id = delivered[0].id.clone();
    let path = format!("messages/{id}/modify");

    let (status, body) = h
        .gmail_post(
            &token,
            &path,
            &json!({ "addLabelIds": ["STARRED", "Label_9"] }),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({ "error": { "code": 400, "message": "Invalid label: Label_9", "errors": [{ "message": "Invalid label: Label_9", "domain": "global", "reason": "invalidArgument" }], "status": "INVALID_ARGUMENT" } })
    );
    // Nothing changed, STARRED included.
    assert_eq!(
        h.sandbox.messages(ANN).unwrap()[0].label_ids,
        ["INBOX", "UNREAD"]
    );
    // A label Gmail alone applies, and a label *name* instead of its id.
    let (_, label) = h
        .gmail_post(&token, "labels", &json!({ "name": "Receipts" }))
        .await;
    assert_eq!(label["id"], "Label_1");
    for (request, bad) in [
        (json!({ "removeLabelIds": ["SENT"] }), "SENT"),
        (json!({ "addLabelIds": ["DRAFT"] }), "DRAFT"),
        (json!({ "addLabelIds": ["Receipts"] }), "Receipts"),
    ] {
        let (status, body) = h.gmail_post(&token, &path, &request).await;
        assert_eq!(status, 400, "{request}");
        assert_eq!(body["error"]["message"], format!("Invalid label: {bad}"));
    }

    for request in [
        json!({}),
        json!({ "addLabelIds": [], "removeLabelIds": [] }),
    ] {
        let (status, body) = h.gmail_post(&token, &path, &request).await;
        assert_eq!(status, 400, "{request}");
        assert_eq!(
            body["error"]["message"],
            "No label add or removes specified"
        );
        assert_eq!(body["error"]["errors"][0]["reason"], "invalidArgument");
    }
    let (status, body) = h
        .gmail_post(&token, &path, &json!({ "addLabelIds": "STARRED" }))
        .await;
    assert_eq!((status, body["error"]["code"].as_i64()), (400, Some(400)));

    let (status, body) = h
        .gmail_post(
            &token,
            "messages/ffffffffffffffff/modify",
            &json!({ "addLabelIds": ["STARRED"] }),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({ "error": { "code": 404, "message": "Requested entity was not found.", "errors": [{ "message": "Requested entity was not found.", "domain": "global", "reason": "notFound" }], "status": "NOT_FOUND" } })
    );
    // Another account's message is not found either.
    let bob = h.access_token(BOB, GMAIL_MODIFY).await;
    let (status, _) = h
        .gmail_post(&bob, &path, &json!({ "addLabelIds": ["STARRED"] }))
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        h.sandbox.messages(ANN).unwrap()[0].label_ids,
        ["INBOX", "UNREAD"]
    );
}

#[tokio::test]
async fn labels_and_modify_need_their_scopes() {
    let h = start().await;
    let delivered = h
        .sandbox
        .deliver(&InboundMessage::new("a@outside.test", ANN, "Hi", "x"))
        .unwrap();
    let path = format!("messages/{}/modify", delivered[0].id);
    let read_and_send = h
        .access_token(ANN, &format!("{GMAIL_READONLY} {GMAIL_SEND}"))
        .await;
    let (status, body) = h
        .gmail_post(
            &read_and_send,
            &path,
            &json!({ "addLabelIds": ["STARRED"] }),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({ "error": { "code": 403, "message": "Request had insufficient authentication scopes.", "errors": [{ "message": "Insufficient Permission", "domain": "global", "reason": "insufficientPermissions" }], "status": "PERMISSION_DENIED" } })
    );
    let (status, body) = h
        .gmail_post(&read_and_send, "labels", &json!({ "name": "X" }))
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error"]["errors"][0]["reason"],
        "insufficientPermissions"
    );
    let (status, _) = h.gmail_get(&read_and_send, "labels").await;
    assert_eq!(status, 200, "readonly still lists labels");

    // gmail.labels creates labels but cannot label messages.
    let labels_only = h.access_token(ANN, GMAIL_LABELS).await;
    let (status, _) = h
        .gmail_post(&labels_only, "labels", &json!({ "name": "X" }))
        .await;
    assert_eq!(status, 200);
    let (status, _) = h
        .gmail_post(&labels_only, &path, &json!({ "addLabelIds": ["Label_1"] }))
        .await;
    assert_eq!(status, 403);
    assert_eq!(h.sandbox.labels(ANN).unwrap().len(), 1);
    assert_eq!(
        h.sandbox.messages(ANN).unwrap()[0].label_ids,
        ["INBOX", "UNREAD"]
    );
    // https://mail.google.com/ covers both.
    let full = h.access_token(ANN, "https://mail.google.com/").await;
    let (status, _) = h
        .gmail_post(&full, &path, &json!({ "addLabelIds": ["Label_1"] }))
        .await;
    assert_eq!(status, 200);
    assert_eq!(h.sandbox.call_count("messages.modify"), 3);
    assert_eq!(h.sandbox.call_count("labels.create"), 2);
}

#[tokio::test]
async fn injected_faults_hit_modify_and_labels_create() {
    let h = start().await;
    let token = h.access_token(ANN, GMAIL_MODIFY).await;
    let delivered = h
        .sandbox
        .deliver(&InboundMessage::new("a@outside.test", ANN, "Hi", "x"))
        .unwrap();
    let path = format!("messages/{}/modify", delivered[0].id);
    h.sandbox
        .inject_fault("messages.modify", Fault::BackendError, 1);
    h.sandbox
        .inject_fault("labels.create", Fault::RateLimited, 1);
    let (status, _) = h
        .gmail_post(&token, &path, &json!({ "addLabelIds": ["STARRED"] }))
        .await;
    assert_eq!(status, 500);
    assert_eq!(
        h.sandbox.messages(ANN).unwrap()[0].label_ids,
        ["INBOX", "UNREAD"],
        "a failed call changes nothing"
    );
    let (status, _) = h
        .gmail_post(&token, "labels", &json!({ "name": "X" }))
        .await;
    assert_eq!(status, 429);
    assert!(h.sandbox.labels(ANN).unwrap().is_empty());
    let (status, _) = h
        .gmail_post(&token, &path, &json!({ "addLabelIds": ["STARRED"] }))
        .await;
    assert_eq!(status, 200);
    let (status, _) = h
        .gmail_post(&token, "labels", &json!({ "name": "X" }))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        h.sandbox.quota_used(ANN),
        5 + 5,
        "failed calls are not charged"
    );

    // An answer held back after the change: a client that gives up
    // retries into a 409, as against Gmail.
    h.sandbox
        .stall_answer_after_commit("labels.create", Duration::from_secs(5), 1);
    let err = h
        .http
        .post(h.url("/gmail/v1/users/me/labels"))
        .bearer_auth(&token)
        .json(&json!({ "name": "Y" }))
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(h.sandbox.labels(ANN).unwrap().len(), 2);
    let (status, _) = h
        .gmail_post(&token, "labels", &json!({ "name": "Y" }))
        .await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn attachment_filename_shows_in_format_full() {
    let h = start().await;
    let token = h.access_token(ANN, GMAIL_READONLY).await;
    let raw = "From: billing@vendor.test\r\nTo: ann@example.com\r\nSubject: Your invoice\r\nMessage-ID: <inv-1@vendor.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n--mix\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nInvoice attached.\r\n--mix\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"invoice.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--mix--\r\n";
    let from_raw = h
        .sandbox
        .deliver(&InboundMessage {
            raw: Some(raw.into()),
            ..InboundMessage::default()
        })
        .unwrap();
    let built = h
        .sandbox
        .deliver(
            &InboundMessage::new(
                "billing@vendor.test",
                ANN,
                "Another invoice",
                "See attached.",
            )
            .attachment(Attachment::new(
                "invoice-8.pdf",
                "application/pdf",
                "%PDF-1.4\n",
            )),
        )
        .unwrap();
    for (delivered, filename) in [(&from_raw, "invoice.pdf"), (&built, "invoice-8.pdf")] {
        let (status, full) = h
            .gmail_get(&token, &format!("messages/{}?format=full", delivered[0].id))
            .await;
        assert_eq!(status, 200);
        let payload = &full["payload"];
        assert_eq!(payload["mimeType"], "multipart/mixed");
        assert_eq!(payload["filename"], "");
        let parts = payload["parts"].as_array().unwrap();
        assert_eq!(parts.len(), 2, "{payload}");
        assert_eq!(parts[0]["mimeType"], "text/plain");
        assert_eq!(parts[0]["filename"], "");
        assert_eq!(parts[1]["partId"], "1");
        assert_eq!(parts[1]["mimeType"], "application/pdf");
        assert_eq!(parts[1]["filename"], filename);
        assert_eq!(
            b64url_decode(parts[1]["body"]["data"].as_str().unwrap()),
            b"%PDF-1.4\n"
        );
    }
    let view = &h.sandbox.messages(ANN).unwrap()[1];
    assert_eq!(view.text.trim(), "See attached.");
}
