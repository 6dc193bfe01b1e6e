//! Microsoft Graph mail, delta and subscriptions, over real HTTP.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mailwright_sandbox::{
    Consent, GraphFault, MicrosoftInbound, OAuthClient, Sandbox, SandboxConfig,
};
use reqwest::Method;
use serde_json::{Value, json};

const ANN: &str = "ann@contoso.test";
const BOB: &str = "bob@contoso.test";
const ALL: &[&str] = &["User.Read", "Mail.ReadWrite", "Mail.Send", "offline_access"];
const PROP: &str = "String {00020329-0000-0000-C000-000000000046} Name MailwrightRun";

struct Ms {
    sandbox: Sandbox,
    base: String,
    http: reqwest::Client,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

async fn start() -> Ms {
    let sandbox = Sandbox::new(SandboxConfig::default());
    sandbox.microsoft().create_account(ANN, "Ann Contoso");
    sandbox.microsoft().create_account(BOB, "Bob Contoso");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(mailwright_sandbox::serve(listener, sandbox.clone()));
    let http = common::http_client_builder().build().unwrap();
    Ms {
        sandbox,
        base,
        http,
    }
}

impl Ms {
    fn token(&self, email: &str, scopes: &[&str]) -> String {
        self.sandbox.microsoft().issue_access_token(email, scopes)
    }

    fn graph(&self, path: &str) -> String {
        format!("{}/microsoft/v1.0/{path}", self.base)
    }

    async fn call(
        &self,
        method: Method,
        token: Option<&str>,
        url: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            text: response.text().await.unwrap(),
        }
    }

    async fn get(&self, token: &str, path: &str) -> Answer {
        self.call(Method::GET, Some(token), &self.graph(path), None, &[])
            .await
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> Answer {
        self.call(
            Method::POST,
            Some(token),
            &self.graph(path),
            Some(body),
            &[],
        )
        .await
    }

    fn deliver(&self, to: &str, subject: &str) -> mailwright_sandbox::MicrosoftDelivered {
        self.sandbox
            .microsoft()
            .deliver(MicrosoftInbound::new(
                "carol@fabrikam.test",
                to,
                subject,
                "Hello there.",
            ))
            .unwrap()
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn delta_pages_then_reports_new_and_removed_messages() {
    let ms = start().await;
    let token = ms.token(ANN, ALL);
    let first: Vec<String> = (0..3)
        .map(|i| ms.deliver(ANN, &format!("m{i}")).id)
        .collect();
    let prefer = [("Prefer", "odata.maxpagesize=2")];
    let url = ms.graph("me/mailFolders/Inbox/messages/delta?$select=subject,receivedDateTime");
    let page = ms
        .call(Method::GET, Some(&token), &url, None, &prefer)
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    let body = page.json();
    assert_eq!(ids(&body).len(), 2);
    assert!(body["value"][0].get("body").is_none(), "$select honoured");
    assert!(body.get("@odata.deltaLink").is_none());
    let next = body["@odata.nextLink"].as_str().unwrap();
    assert!(
        next.starts_with(&format!(
            "{}/microsoft/v1.0/me/mailFolders/Inbox/messages/delta?$skiptoken=",
            ms.base
        )),
        "{next}"
    );
    let mut seen = ids(&body);
    let page = ms
        .call(Method::GET, Some(&token), next, None, &prefer)
        .await;
    let body = page.json();
    assert_eq!(ids(&body).len(), 1);
    seen.extend(ids(&body));
    let delta_link = body["@odata.deltaLink"].as_str().unwrap().to_owned();
    assert!(delta_link.contains("$deltatoken="));
    seen.sort();
    let mut expected = first.clone();
    expected.sort();
    assert_eq!(seen, expected);

    // Nothing changed: an empty round.
    let quiet = ms
        .call(Method::GET, Some(&token), &delta_link, None, &[])
        .await
        .json();
    assert_eq!(ids(&quiet).len(), 0);

    let new = ms.deliver(ANN, "m3").id;
    let gone = ms
        .call(
            Method::DELETE,
            Some(&token),
            &ms.graph(&format!("me/messages/{}", first[0])),
            None,
            &[],
        )
        .await;
    assert_eq!(gone.status, 204);
    let round = ms
        .call(Method::GET, Some(&token), &delta_link, None, &[])
        .await
        .json();
    let values = round["value"].as_array().unwrap();
    assert_eq!(values.len(), 2, "{round}");
    assert!(
        values
            .iter()
            .any(|v| v["id"] == new.as_str() && v["subject"] == "m3")
    );
    assert!(
        values
            .iter()
            .any(|v| v["id"] == first[0].as_str() && v["@removed"]["reason"] == "deleted")
    );
    assert!(round["@odata.deltaLink"].as_str().unwrap() != delta_link);
    assert_eq!(
        ms.sandbox.microsoft().messages(ANN, "deleteditems").len(),
        1
    );
    assert_eq!(ms.sandbox.microsoft().call_count("graph.delta"), 4);
}

#[tokio::test]
async fn expired_or_malformed_delta_tokens_are_410_gone() {
    let ms = start().await;
    let token = ms.token(ANN, &["Mail.Read"]);
    ms.deliver(ANN, "one");
    let body = ms
        .get(&token, "me/mailFolders/inbox/messages/delta")
        .await
        .json();
    let delta_link = body["@odata.deltaLink"].as_str().unwrap().to_owned();
    assert_eq!(
        ms.call(Method::GET, Some(&token), &delta_link, None, &[])
            .await
            .status,
        200
    );
    // Tokens issued just now are not older than an hour.
    assert_eq!(
        ms.sandbox
            .microsoft()
            .expire_delta_tokens(ANN, Some(chrono::Duration::hours(1))),
        0
    );
    assert!(ms.sandbox.microsoft().expire_delta_tokens(ANN, None) >= 1);
    let gone = ms
        .call(Method::GET, Some(&token), &delta_link, None, &[])
        .await;
    assert_eq!(gone.status, 410, "{}", gone.text);
    assert_eq!(gone.json()["error"]["code"], "SyncStateNotFound");
    assert_eq!(
        gone.json()["error"]["message"],
        "The sync state generation is not found. The delta token is expired and data must be synchronized again."
    );
    assert!(gone.json()["error"]["innerError"]["request-id"].is_string());
    let malformed = ms
        .get(
            &token,
            "me/mailFolders/inbox/messages/delta?$deltatoken=not-a-token",
        )
        .await;
    assert_eq!(malformed.status, 410);
    // Starting over works.
    assert_eq!(
        ms.get(&token, "me/mailFolders/inbox/messages/delta")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn create_reply_threads_and_carries_in_reply_to() {
    let ms = start().await;
    let token = ms.token(ANN, ALL);
    let original = ms
        .sandbox
        .microsoft()
        .deliver(
            MicrosoftInbound::new(
                "carol@fabrikam.test",
                ANN,
                "Quote request",
                "Can you quote 10 units?",
            )
            .with_message_id("orig-1@fabrikam.test"),
        )
        .unwrap();
    assert_eq!(original.internet_message_id, "<orig-1@fabrikam.test>");
    let reply = ms
        .post(
            &token,
            &format!("me/messages/{}/createReply", original.id),
            json!({"comment": "Sure, 42 EUR each.", "message": {"singleValueExtendedProperties": [{"id": PROP, "value": "run-7"}]}}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let draft = reply.json();
    assert_eq!(draft["isDraft"], true);
    assert_eq!(draft["conversationId"], original.conversation_id.as_str());
    assert_eq!(draft["subject"], "RE: Quote request");
    assert_eq!(
        draft["toRecipients"][0]["emailAddress"]["address"],
        "carol@fabrikam.test"
    );
    assert!(
        draft["body"]["content"]
            .as_str()
            .unwrap()
            .starts_with("Sure, 42 EUR each.")
    );
    assert!(
        draft["body"]["content"]
            .as_str()
            .unwrap()
            .contains("> Can you quote 10 units?")
    );
    let drafts = ms
        .get(&token, "me/mailFolders/drafts/messages")
        .await
        .json();
    assert_eq!(ids(&drafts), vec![draft["id"].as_str().unwrap().to_owned()]);

    let mime = ms
        .get(
            &token,
            &format!("me/messages/{}/$value", draft["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(mime.status, 200);
    assert_eq!(mime.headers[header::CONTENT_TYPE], "message/rfc822");
    assert!(
        mime.text
            .contains("In-Reply-To: <orig-1@fabrikam.test>\r\n"),
        "{}",
        mime.text
    );
    assert!(mime.text.contains("References: <orig-1@fabrikam.test>\r\n"));
    assert!(mime.text.contains("Subject: RE: Quote request\r\n"));
    assert!(
        !mime.text.contains("MailwrightRun"),
        "extended properties are no headers"
    );

    // Sent, then answered from outside: the answer joins the conversation.
    let sent = ms
        .post(
            &token,
            &format!("me/messages/{}/send", draft["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(sent.status, 202, "{}", sent.text);
    assert!(sent.text.is_empty());
    let sent_items = ms.sandbox.microsoft().messages(ANN, "sentitems");
    let answer = ms
        .sandbox
        .microsoft()
        .deliver(
            MicrosoftInbound::new("carol@fabrikam.test", ANN, "RE: RE: Quote request", "Deal.")
                .in_reply_to(&sent_items[0].internet_message_id),
        )
        .unwrap();
    assert_eq!(answer.conversation_id, original.conversation_id);
    let again = ms
        .post(
            &token,
            &format!("me/messages/{}/createReply", answer.id),
            json!({}),
        )
        .await
        .json();
    assert_eq!(
        again["subject"], "RE: RE: Quote request",
        "no RE: added to a RE:"
    );
    let thread = ms
        .get(
            &token,
            &format!(
                "me/messages?$filter=conversationId eq '{}'",
                original.conversation_id
            ),
        )
        .await
        .json();
    assert_eq!(ids(&thread).len(), 4, "{thread}");
}

#[tokio::test]
async fn drafts_with_an_extended_property_are_found_by_filter() {
    let ms = start().await;
    let token = ms.token(ANN, ALL);
    let created = ms
        .post(
            &token,
            "me/messages",
            json!({
                "subject": "Weekly report",
                "body": {"contentType": "html", "content": "<p>All <b>good</b>.</p>"},
                "toRecipients": [{"emailAddress": {"address": BOB, "name": "Bob"}}],
                "internetMessageHeaders": [{"name": "X-Mailwright-Run", "value": "r1"}],
                "singleValueExtendedProperties": [{"id": PROP, "value": "Run-42"}],
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let draft = created.json();
    let id = draft["id"].as_str().unwrap();
    assert!(id.starts_with("AAMkAD"));
    assert_eq!(draft["bodyPreview"], "All good.");
    ms.post(&token, "me/messages", json!({"subject": "other"}))
        .await;

    let filter = format!(
        "me/messages?$filter=singleValueExtendedProperties/Any(ep: ep/id eq '{PROP}' and ep/value eq 'run-42')"
    );
    let found = ms.get(&token, &filter).await;
    assert_eq!(found.status, 200, "{}", found.text);
    assert_eq!(ids(&found.json()), vec![id.to_owned()]);
    let none = ms
        .get(&token, &filter.replace("run-42", "run-43"))
        .await
        .json();
    assert!(ids(&none).is_empty());

    let expanded = ms
        .get(
            &token,
            &format!(
                "me/messages/{id}?$select=subject,internetMessageHeaders&$expand=singleValueExtendedProperties($filter=id eq '{PROP}')"
            ),
        )
        .await
        .json();
    assert_eq!(
        expanded["singleValueExtendedProperties"][0]["value"],
        "Run-42"
    );
    assert_eq!(
        expanded["internetMessageHeaders"][0]["name"],
        "X-Mailwright-Run"
    );
    assert!(expanded.get("body").is_none());
    assert!(expanded["@odata.etag"].is_string());
    let plain = ms.get(&token, &format!("me/messages/{id}")).await.json();
    assert!(plain.get("internetMessageHeaders").is_none());
    assert!(plain.get("singleValueExtendedProperties").is_none());
    assert_eq!(plain["body"]["contentType"], "html");

    let unsupported = ms
        .get(
            &token,
            "me/messages?$filter=from/emailAddress/address eq 'x'",
        )
        .await;
    assert_eq!(unsupported.status, 400);
    assert_eq!(
        unsupported.json()["error"]["code"],
        "ErrorInvalidUrlQueryFilter"
    );
    assert!(unsupported.text.contains("from/emailAddress/address"));
    let bad_header = ms
        .post(
            &token,
            "me/messages",
            json!({"internetMessageHeaders": [{"name": "Subject", "value": "x"}]}),
        )
        .await;
    assert_eq!(bad_header.status, 400);
    let malformed = ms
        .call(
            Method::POST,
            Some(&token),
            &ms.graph("me/messages"),
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.json()["error"]["code"], "BadRequest");

    // Paging a list.
    for i in 0..3 {
        ms.deliver(ANN, &format!("n{i}"));
    }
    let page = ms
        .get(&token, "me/mailFolders/inbox/messages?$top=2")
        .await
        .json();
    assert_eq!(ids(&page).len(), 2);
    assert_eq!(page["value"][0]["subject"], "n2", "newest first");
    let next = page["@odata.nextLink"].as_str().unwrap();
    assert!(next.contains("$skip=2"), "{next}");
    let rest = ms
        .call(Method::GET, Some(&token), next, None, &[])
        .await
        .json();
    assert_eq!(ids(&rest).len(), 1);
    assert!(rest.get("@odata.nextLink").is_none());
}

#[tokio::test]
async fn send_moves_the_draft_to_sent_items_and_delivers_to_sandbox_accounts() {
    let ms = start().await;
    let token = ms.token(ANN, ALL);
    let draft = ms
        .post(
            &token,
            "me/messages",
            json!({
                "subject": "Lunch?",
                "body": {"contentType": "text", "content": "Noon at the usual place."},
                "toRecipients": [{"emailAddress": {"address": BOB}}],
                "bccRecipients": [{"emailAddress": {"address": "dave@elsewhere.test"}}],
                "singleValueExtendedProperties": [{"id": PROP, "value": "lunch"}],
            }),
        )
        .await
        .json();
    let id = draft["id"].as_str().unwrap();
    let sent = ms
        .post(&token, &format!("me/messages/{id}/send"), json!({}))
        .await;
    assert_eq!(sent.status, 202, "{}", sent.text);
    let microsoft = ms.sandbox.microsoft();
    assert!(microsoft.messages(ANN, "drafts").is_empty());
    let sent_items = microsoft.messages(ANN, "sentitems");
    assert_eq!(sent_items.len(), 1);
    assert!(!sent_items[0].is_draft);
    assert_eq!(
        sent_items[0].internet_message_id,
        draft["internetMessageId"].as_str().unwrap()
    );
    assert_eq!(
        sent_items[0].extended_properties,
        vec![(PROP.to_owned(), "lunch".to_owned())]
    );
    let inbox = microsoft.messages(BOB, "inbox");
    assert_eq!(inbox.len(), 1);
    assert!(!inbox[0].is_read);
    assert!(inbox[0].bcc.is_empty());
    assert!(!inbox[0].mime.contains("dave@elsewhere.test"));
    assert_eq!(inbox[0].from.as_deref(), Some(ANN));
    assert_eq!(
        ms.get(&token, &format!("me/messages/{id}")).await.status,
        404
    );

    let sent_id = &sent_items[0].id;
    let again = ms
        .post(&token, &format!("me/messages/{sent_id}/send"), json!({}))
        .await;
    assert_eq!(again.status, 400);
    assert_eq!(again.json()["error"]["code"], "ErrorInvalidOperation");
    let edit = ms
        .call(
            Method::PATCH,
            Some(&token),
            &ms.graph(&format!("me/messages/{sent_id}")),
            Some(json!({"body": {"contentType": "text", "content": "changed"}})),
            &[],
        )
        .await;
    assert_eq!(edit.status, 400);
    let read = ms
        .call(
            Method::PATCH,
            Some(&token),
            &ms.graph(&format!("me/messages/{sent_id}")),
            Some(json!({"isRead": false})),
            &[],
        )
        .await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.json()["isRead"], false);

    let send_mail = ms
        .post(
            &token,
            "me/sendMail",
            json!({"message": {"subject": "Direct", "toRecipients": [{"emailAddress": {"address": BOB}}]}, "saveToSentItems": false}),
        )
        .await;
    assert_eq!(send_mail.status, 202, "{}", send_mail.text);
    assert_eq!(microsoft.messages(BOB, "inbox").len(), 2);
    assert_eq!(microsoft.messages(ANN, "sentitems").len(), 1);
}

#[tokio::test]
async fn permissions_and_token_lifetime_are_enforced() {
    let ms = start().await;
    let delivered = ms.deliver(ANN, "hi");
    let read_write = ms.token(ANN, &["mail.readwrite"]);
    assert_eq!(ms.get(&read_write, "me/messages").await.status, 200);
    let denied = ms
        .post(
            &read_write,
            "me/sendMail",
            json!({"message": {"toRecipients": [{"emailAddress": {"address": BOB}}]}}),
        )
        .await;
    assert_eq!(denied.status, 403);
    assert_eq!(denied.json()["error"]["code"], "ErrorAccessDenied");
    assert_eq!(
        denied.json()["error"]["message"],
        "Access is denied. Check credentials and try again."
    );
    let send_only = ms.token(ANN, &["Mail.Send"]);
    assert_eq!(ms.get(&send_only, "me/messages").await.status, 403);
    let read_only = ms.token(ANN, &["Mail.Read"]);
    let reply = ms
        .post(
            &read_only,
            &format!("me/messages/{}/createReply", delivered.id),
            json!({}),
        )
        .await;
    assert_eq!(reply.status, 403);

    let missing = ms
        .call(Method::GET, None, &ms.graph("me/messages"), None, &[])
        .await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json()["error"]["message"], "Access token is empty.");
    assert_eq!(ms.get("nonsense", "me/messages").await.status, 401);
    ms.sandbox.microsoft().expire_access_tokens(ANN);
    let expired = ms.get(&read_write, "me/messages").await;
    assert_eq!(expired.status, 401);
    assert_eq!(
        expired.json()["error"]["code"],
        "InvalidAuthenticationToken"
    );
    assert_eq!(
        expired.json()["error"]["message"],
        "Lifetime validation failed, the token is expired."
    );
    // Bob cannot read Ann's message.
    let bob = ms.token(BOB, ALL);
    let other = ms.get(&bob, &format!("me/messages/{}", delivered.id)).await;
    assert_eq!(other.status, 404);
    assert_eq!(other.json()["error"]["code"], "ErrorItemNotFound");
}

#[tokio::test]
async fn injected_throttling_answers_429_with_retry_after() {
    let ms = start().await;
    let token = ms.token(ANN, ALL);
    let bob = ms.token(BOB, ALL);
    let microsoft = ms.sandbox.microsoft();
    microsoft.fail_graph_calls(GraphFault::throttle(2, 7).on_path("/messages"));
    for _ in 0..2 {
        let throttled = ms.get(&token, "me/mailFolders/inbox/messages").await;
        assert_eq!(throttled.status, 429);
        assert_eq!(throttled.headers[header::RETRY_AFTER], "7");
        assert_eq!(throttled.json()["error"]["code"], "ApplicationThrottled");
    }
    assert_eq!(
        ms.get(&token, "me/mailFolders/inbox/messages").await.status,
        200
    );
    microsoft.fail_graph_calls(GraphFault::status(503, 1).retry_after(2).for_user(BOB));
    assert_eq!(ms.get(&token, "me/messages").await.status, 200);
    let unavailable = ms.get(&bob, "me/messages").await;
    assert_eq!(unavailable.status, 503);
    assert_eq!(unavailable.headers[header::RETRY_AFTER], "2");
    assert_eq!(ms.get(&bob, "me/messages").await.status, 200);
    assert_eq!(microsoft.call_count("graph.messages.list"), 6);
    assert_eq!(microsoft.call_count("graph.fault"), 3);

    // Over HTTP too.
    let control = ms
        .http
        .post(format!("{}/_sandbox/microsoft/graph-faults", ms.base))
        .json(&json!({"status": 429, "times": 1, "retry_after": 3, "path_contains": "delta"}))
        .send()
        .await
        .unwrap();
    assert_eq!(control.status(), 204);
    let delta = ms.get(&token, "me/mailFolders/inbox/messages/delta").await;
    assert_eq!(delta.status, 429);
    assert_eq!(delta.headers[header::RETRY_AFTER], "3");
}

#[tokio::test]
async fn a_held_answer_comes_after_the_work_is_done() {
    let ms = start().await;
    let token = ms.token(ANN, ALL);
    let microsoft = ms.sandbox.microsoft();
    let original = ms.deliver(ANN, "Held");
    let hold = Duration::from_millis(600);
    microsoft.fail_graph_calls(GraphFault::held_answer(1, hold).on_path("/createReply"));
    let reply = format!("me/messages/{}/createReply", original.id);
    // The draft is made at once; its answer comes only after the hold.
    let started = std::time::Instant::now();
    let made = async {
        while microsoft.messages(ANN, "drafts").is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        started.elapsed()
    };
    let (answer, made_after) = tokio::join!(ms.post(&token, &reply, json!({})), made);
    let answered_after = started.elapsed();
    assert!(answered_after >= hold, "{answered_after:?}");
    assert!(
        made_after + hold / 2 < answered_after,
        "made after {made_after:?}, answered after {answered_after:?}"
    );
    assert_eq!(microsoft.call_count("graph.held"), 1);
    assert_eq!(answer.status, 201, "its own answer, late: {}", answer.text);
    assert_eq!(
        answer.json()["id"],
        microsoft.messages(ANN, "drafts")[0].id.as_str()
    );
    assert_eq!(microsoft.call_count("graph.fault"), 0);

    // A lost answer held: the work, then 504 after the hold.
    microsoft.fail_graph_calls(
        GraphFault::lost_answer(1)
            .held_for(hold)
            .on_path("/createReply"),
    );
    let started = std::time::Instant::now();
    assert_eq!(ms.post(&token, &reply, json!({})).await.status, 504);
    assert!(started.elapsed() >= hold);
    assert_eq!(microsoft.messages(ANN, "drafts").len(), 2);
    assert_eq!(microsoft.call_count("graph.held"), 2);
    assert_eq!(microsoft.call_count("graph.fault"), 1);

    // Over HTTP; unused faults can be cleared.
    let control = ms
        .http
        .post(format!("{}/_sandbox/microsoft/graph-faults", ms.base))
        .json(&json!({"status": 200, "times": 3, "after_commit": true, "hold_millis": 50}))
        .send()
        .await
        .unwrap();
    assert_eq!(control.status(), 204);
    let refused = ms
        .http
        .post(format!("{}/_sandbox/microsoft/graph-faults", ms.base))
        .json(&json!({"status": 200, "times": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400, "200 is only for a held answer");
    assert_eq!(ms.get(&token, "me/messages").await.status, 200);
    assert_eq!(microsoft.call_count("graph.held"), 3);
    microsoft.clear_graph_faults();
    assert_eq!(ms.get(&token, "me/messages").await.status, 200);
    assert_eq!(microsoft.call_count("graph.held"), 3);
}

#[derive(Clone, Default)]
struct Receiver {
    echo: bool,
    received: Arc<Mutex<Vec<Value>>>,
}

async fn hook(
    State(receiver): State<Receiver>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let token = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "validationToken")
        .map(|(_, v)| v.into_owned());
    if let Some(token) = token {
        let answer = if receiver.echo {
            token
        } else {
            "nope".to_owned()
        };
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain")],
            answer,
        )
            .into_response();
    }
    if let Ok(value) = serde_json::from_slice::<Value>(&body) {
        receiver.received.lock().unwrap().push(value);
    }
    StatusCode::ACCEPTED.into_response()
}

async fn receiver(echo: bool) -> (String, Receiver) {
    let receiver = Receiver {
        echo,
        ..Receiver::default()
    };
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, receiver)
}

#[tokio::test]
async fn subscriptions_validate_the_endpoint_and_notify_new_mail() {
    let ms = start().await;
    let token = ms.token(ANN, ALL);
    let (url, receiver) = receiver(true).await;
    let in_a_day = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let created = ms
        .post(
            &token,
            "subscriptions",
            json!({"changeType": "created", "notificationUrl": url, "resource": "/me/mailfolders('inbox')/messages",
                   "expirationDateTime": in_a_day, "clientState": "s3cret"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let subscription = created.json();
    let id = subscription["id"].as_str().unwrap().to_owned();
    assert_eq!(subscription["clientState"], "s3cret");
    assert_eq!(subscription["applicationId"], "sandbox-test-app");

    // Drafts are not in the inbox: no notification for them.
    ms.post(&token, "me/messages", json!({"subject": "draft"}))
        .await;
    let delivered = ms.deliver(ANN, "ping");
    let mut notified = Vec::new();
    for _ in 0..100 {
        notified = ms.sandbox.microsoft().notifications();
        if !notified.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(notified.len(), 1, "{notified:?}");
    assert!(notified[0].delivered);
    assert_eq!(notified[0].message_id, delivered.id);
    let received = receiver.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let item = &received[0]["value"][0];
    assert_eq!(item["clientState"], "s3cret");
    assert_eq!(item["subscriptionId"], id.as_str());
    assert_eq!(item["changeType"], "created");
    assert_eq!(item["resourceData"]["id"], delivered.id.as_str());
    let ann_id = ms.sandbox.microsoft().accounts()[0].id.clone();
    assert_eq!(
        item["resource"],
        format!("Users/{ann_id}/Messages/{}", delivered.id)
    );

    // Renew, read, and an expired subscription says nothing.
    let renewed = ms
        .call(
            Method::PATCH,
            Some(&token),
            &ms.graph(&format!("subscriptions/{id}")),
            Some(json!({"expirationDateTime": (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339()})),
            &[],
        )
        .await;
    assert_eq!(renewed.status, 200, "{}", renewed.text);
    assert_eq!(
        ms.get(&token, &format!("subscriptions/{id}")).await.status,
        200
    );
    assert!(ms.sandbox.microsoft().expire_subscription(&id));
    ms.deliver(ANN, "quiet");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ms.sandbox.microsoft().notifications().len(), 1);
    let deleted = ms
        .call(
            Method::DELETE,
            Some(&token),
            &ms.graph(&format!("subscriptions/{id}")),
            None,
            &[],
        )
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        ms.get(&token, &format!("subscriptions/{id}")).await.status,
        404
    );

    // Too far ahead.
    let far = ms
        .post(
            &token,
            "subscriptions",
            json!({"changeType": "created", "notificationUrl": url, "resource": "me/mailFolders('Inbox')/messages",
                   "expirationDateTime": (chrono::Utc::now() + chrono::Duration::days(8)).to_rfc3339()}),
        )
        .await;
    assert_eq!(far.status, 400);
}

#[tokio::test]
async fn a_subscription_whose_endpoint_does_not_echo_is_refused() {
    let ms = start().await;
    let token = ms.token(ANN, ALL);
    let (url, _receiver) = receiver(false).await;
    let refused = ms
        .post(
            &token,
            "subscriptions",
            json!({"changeType": "created", "notificationUrl": url, "resource": "me/mailFolders('Inbox')/messages",
                   "expirationDateTime": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(), "clientState": "x"}),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(refused.json()["error"]["code"], "ValidationError");
    assert!(ms.sandbox.microsoft().subscriptions(ANN).is_empty());
}

#[tokio::test]
async fn a_renewal_that_moves_the_notification_url_validates_it_first() {
    let ms = start().await;
    let token = ms.token(ANN, ALL);
    let (first, _) = receiver(true).await;
    let created = ms
        .post(
            &token,
            "subscriptions",
            json!({"changeType": "created", "notificationUrl": first, "resource": "me/mailFolders('Inbox')/messages",
                   "expirationDateTime": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(), "clientState": "x"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let renew = |url: String| {
        let path = ms.graph(&format!("subscriptions/{id}"));
        let token = token.clone();
        let ms = &ms;
        async move {
            ms.call(
                Method::PATCH,
                Some(&token),
                &path,
                Some(json!({"notificationUrl": url,
                    "expirationDateTime": (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339()})),
                &[],
            )
            .await
        }
    };
    let (silent, _) = receiver(false).await;
    let refused = renew(silent).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(refused.json()["error"]["code"], "ValidationError");
    let kept = &ms.sandbox.microsoft().subscriptions(ANN)[0];
    assert_eq!(kept.notification_url, first);

    let (moved, _) = receiver(true).await;
    let renewed = renew(moved.clone()).await;
    assert_eq!(renewed.status, 200, "{}", renewed.text);
    assert_eq!(renewed.json()["notificationUrl"], moved.as_str());
    assert_eq!(
        ms.sandbox.microsoft().subscriptions(ANN)[0].notification_url,
        moved
    );
}

#[tokio::test]
async fn a_token_from_the_authorization_code_flow_reads_mail() {
    let ms = start().await;
    let redirect = "http://127.0.0.1:9/callback";
    ms.sandbox
        .microsoft()
        .register_app(OAuthClient::new("app-1", "secret-1", [redirect]));
    let mut authorize = url::Url::parse(&format!(
        "{}/microsoft/common/oauth2/v2.0/authorize",
        ms.base
    ))
    .unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("client_id", "app-1")
        .append_pair("redirect_uri", redirect)
        .append_pair("response_type", "code")
        .append_pair("scope", "offline_access User.Read Mail.Read");
    let back = ms
        .sandbox
        .microsoft()
        .approve(authorize.as_str(), Consent::allow_all().as_account(ANN))
        .unwrap();
    let code = common::query_param(&back, "code").unwrap();
    let answer: Value = ms
        .http
        .post(format!("{}/microsoft/common/oauth2/v2.0/token", ms.base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect),
            ("client_id", "app-1"),
            ("client_secret", "secret-1"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = answer["access_token"].as_str().unwrap();
    ms.deliver(ANN, "hello");
    let list = ms.get(token, "me/mailFolders/Inbox/messages").await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.json()["value"][0]["subject"], "hello");
    assert_eq!(list.json()["value"][0]["isRead"], false);
}

#[tokio::test]
async fn controls_work_over_http() {
    let ms = start().await;
    let delivered: Value = ms
        .http
        .post(format!("{}/_sandbox/microsoft/deliver", ms.base))
        .json(&json!({"from": "x@y.test", "to": ANN, "subject": "via http", "text": "body"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(delivered["id"].as_str().unwrap().starts_with("AAMkAD"));
    let listed: Value = ms
        .http
        .get(format!(
            "{}/_sandbox/microsoft/messages?email={ANN}&folder=inbox",
            ms.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["subject"], "via http");
    let token: Value = ms
        .http
        .post(format!("{}/_sandbox/microsoft/access-tokens", ms.base))
        .json(&json!({"email": ANN, "scopes": ["Mail.Read"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap();
    let one = ms
        .get(
            token,
            &format!(
                "me/mailFolders/INBOX/messages/{}",
                delivered["id"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(one.status, 200, "{}", one.text);
    assert_eq!(one.json()["conversationId"], delivered["conversationId"]);
    let expired: Value = ms
        .http
        .post(format!(
            "{}/_sandbox/microsoft/expire-delta-tokens",
            ms.base
        ))
        .json(&json!({"email": ANN}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(expired["expired"], 0);

    // Raw MIME is served back unchanged; a JSON-made message has a readable body.
    let raw = "From: Erin <erin@fabrikam.test>\r\nTo: ann@contoso.test\r\nSubject: Raw one\r\nMessage-ID: <raw-1@fabrikam.test>\r\nX-Custom: 1\r\n\r\nRaw body.\r\n";
    let raw_delivered = ms.sandbox.microsoft().deliver_raw(ANN, raw).unwrap();
    assert_eq!(raw_delivered.internet_message_id, "<raw-1@fabrikam.test>");
    let value = ms
        .get(token, &format!("me/messages/{}/$value", raw_delivered.id))
        .await;
    assert_eq!(value.text, raw);
    let headers = ms
        .get(
            token,
            &format!(
                "me/messages/{}?$select=internetMessageHeaders",
                raw_delivered.id
            ),
        )
        .await
        .json();
    assert!(
        headers["internetMessageHeaders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["name"] == "X-Custom" && h["value"] == "1")
    );
    let text = ms
        .get(
            token,
            &format!("me/messages/{}/$value", delivered["id"].as_str().unwrap()),
        )
        .await;
    assert!(
        text.text
            .contains("Content-Transfer-Encoding: 7bit\r\n\r\nbody\r\n"),
        "{}",
        text.text
    );
}
