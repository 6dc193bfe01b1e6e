//! The Graph client against the sandbox's Graph: every call Mailwright's
//! Outlook mailbox will make, with Graph's answers and refusals as the
//! client must read them.

use std::time::Duration;

use chrono::Utc;
use mailwright_providers::microsoft::graph::{DeltaItem, Folder, Graph, GraphError, Marker};
use sandbox::{GraphFault, MicrosoftInbound, Sandbox, SandboxConfig};
use secrecy::SecretString;
use serde_json::json;
use url::Url;

const ANN: &str = "ann@contoso.example";
const BOB: &str = "bob@contoso.example";
const ALL: [&str; 3] = ["Mail.ReadWrite", "Mail.Send", "User.Read"];

struct World {
    sandbox: Sandbox,
    graph: Graph,
    base: String,
}

async fn world() -> World {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sandbox = Sandbox::new(SandboxConfig::default());
    for (email, name) in [(ANN, "Ann Example"), (BOB, "Bob Example")] {
        sandbox.microsoft().create_account(email, name);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/microsoft", listener.local_addr().unwrap());
    tokio::spawn(sandbox::serve(listener, sandbox.clone()));
    let graph = Graph::new(Url::parse(&base).unwrap(), reqwest::Client::new());
    World {
        sandbox,
        graph,
        base,
    }
}

impl World {
    fn token(&self, email: &str, scopes: &[&str]) -> SecretString {
        SecretString::from(self.sandbox.microsoft().issue_access_token(email, scopes))
    }

    fn deliver(&self, subject: &str) -> sandbox::MicrosoftDelivered {
        self.sandbox
            .microsoft()
            .deliver(MicrosoftInbound::new(BOB, ANN, subject, "Hello Ann"))
            .unwrap()
    }
}

fn changed(items: &[DeltaItem]) -> Vec<String> {
    items
        .iter()
        .filter_map(|item| match item {
            DeltaItem::Changed(message) => message.subject.clone(),
            DeltaItem::Removed { .. } => None,
        })
        .collect()
}

#[tokio::test]
async fn delta_rounds_find_new_mail_and_an_expired_link_says_so() {
    let w = world().await;
    let token = w.token(ANN, &ALL);
    let before = w.deliver("Before we started");
    // Mail received an hour ago and later: "before" at most (the filter
    // stays in the links Graph hands out).
    let start = w
        .graph
        .delta_start(
            &token,
            Folder::Inbox,
            Utc::now() - chrono::Duration::hours(1),
        )
        .await
        .unwrap();
    assert_eq!(changed(&start.items), ["Before we started"]);
    let later = w
        .graph
        .delta_start(
            &token,
            Folder::Inbox,
            Utc::now() + chrono::Duration::hours(1),
        )
        .await
        .unwrap();
    assert!(later.items.is_empty(), "older mail is left out");
    assert!(
        start.delta_link.starts_with(&w.base),
        "{}",
        start.delta_link
    );

    // More than one page of new mail: the round follows nextLink to the end.
    for n in 0..60 {
        w.deliver(&format!("New {n}"));
    }
    let round = w.graph.delta_next(&token, &start.delta_link).await.unwrap();
    let subjects = changed(&round.items);
    assert_eq!(subjects.len(), 60, "{subjects:?}");
    assert!(subjects.contains(&"New 59".to_owned()));
    let message = match &round.items[0] {
        DeltaItem::Changed(message) => message,
        other => panic!("{other:?}"),
    };
    assert!(message.conversation_id.is_some() && message.internet_message_id.is_some());
    assert_eq!(
        message
            .from
            .as_ref()
            .unwrap()
            .email_address
            .address
            .as_deref(),
        Some(BOB)
    );

    // Nothing new: an empty round, and yet another link.
    let quiet = w.graph.delta_next(&token, &round.delta_link).await.unwrap();
    assert!(quiet.items.is_empty());

    // A removal shows as one.
    w.graph.delete(&token, &before.id).await.unwrap();
    let removed = w.graph.delta_next(&token, &quiet.delta_link).await.unwrap();
    assert!(
        removed
            .items
            .iter()
            .any(|item| matches!(item, DeltaItem::Removed { id } if *id == before.id)),
        "{:?}",
        removed.items
    );

    w.sandbox.microsoft().expire_delta_tokens(ANN, None);
    let gone = w.graph.delta_next(&token, &removed.delta_link).await;
    assert!(matches!(gone, Err(GraphError::DeltaExpired)), "{gone:?}");

    // A stored link pointing anywhere else is never followed with the token.
    let stranger = w
        .graph
        .delta_next(
            &token,
            "http://evil.example/microsoft/v1.0/me/messages/delta",
        )
        .await;
    assert!(
        matches!(stranger, Err(GraphError::Rejected { .. })),
        "{stranger:?}"
    );
}

#[tokio::test]
async fn a_reply_draft_joins_the_conversation_and_is_found_again_by_its_marker() {
    let w = world().await;
    let token = w.token(ANN, &ALL);
    let original = w.deliver("Quarterly numbers");
    let draft = w
        .graph
        .create_reply(
            &token,
            &original.id,
            json!({"body": {"contentType": "text", "content": "Thanks Bob, on it."}}),
            Marker {
                message_id: "autodraft:42",
                source: Some(&original.id),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        draft.conversation_id.as_deref(),
        Some(original.conversation_id.as_str())
    );
    assert_eq!(draft.subject.as_deref(), Some("RE: Quarterly numbers"));
    assert_eq!(draft.is_draft, Some(true));
    let mime = String::from_utf8(w.graph.mime(&token, &draft.id).await.unwrap()).unwrap();
    assert!(
        mime.contains(&format!("In-Reply-To: {}", original.internet_message_id)),
        "{mime}"
    );
    assert!(mime.contains("Thanks Bob, on it."));

    let found = w
        .graph
        .find_marked(&token, Some(Folder::Drafts), "autodraft:42")
        .await
        .unwrap()
        .expect("the draft is found by its marker");
    assert_eq!(found.id, draft.id);
    assert_eq!(found.source(), Some(original.id.as_str()), "read back");
    assert!(
        w.graph
            .find_marked(&token, Some(Folder::Drafts), "autodraft:43")
            .await
            .unwrap()
            .is_none()
    );

    let thread = w
        .graph
        .conversation(&token, &original.conversation_id, 50)
        .await
        .unwrap();
    assert_eq!(thread.len(), 2);
    let message = w.graph.message(&token, &original.id).await.unwrap();
    assert_eq!(message.subject.as_deref(), Some("Quarterly numbers"));
}

#[tokio::test]
async fn a_marked_draft_is_sent_once_and_then_found_in_sent_items() {
    let w = world().await;
    let token = w.token(ANN, &ALL);
    let draft = w
        .graph
        .create_draft(
            &token,
            json!({
                "subject": "Invoice",
                "body": {"contentType": "text", "content": "Attached."},
                "toRecipients": [{"emailAddress": {"address": BOB}}],
            }),
            Marker {
                message_id: "run:7:step:0",
                source: None,
            },
        )
        .await
        .unwrap();
    w.graph.send_draft(&token, &draft.id).await.unwrap();
    // A retry looks before sending again: the send is in Sent Items.
    assert!(
        w.graph
            .find_marked(&token, Some(Folder::Drafts), "run:7:step:0")
            .await
            .unwrap()
            .is_none()
    );
    let sent = w
        .graph
        .find_marked(&token, Some(Folder::SentItems), "run:7:step:0")
        .await
        .unwrap()
        .expect("sent");
    assert_eq!(sent.subject.as_deref(), Some("Invoice"));
    let bobs = w.sandbox.microsoft().messages(BOB, "inbox");
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].subject, "Invoice");
}

#[tokio::test]
async fn refusals_are_sorted_into_what_the_caller_does() {
    let w = world().await;
    let original = w.deliver("Hi");

    // No Mail.Send: sending is forbidden, reading is not.
    let read_only = w.token(ANN, &["Mail.ReadWrite"]);
    let draft = w
        .graph
        .create_reply(
            &read_only,
            &original.id,
            json!({"body": {"contentType": "text", "content": "x"}}),
            Marker {
                message_id: "m",
                source: None,
            },
        )
        .await
        .unwrap();
    let refused = w.graph.send_draft(&read_only, &draft.id).await;
    assert!(
        matches!(&refused, Err(GraphError::Forbidden { code }) if code == "ErrorAccessDenied"),
        "{refused:?}"
    );

    let stranger = SecretString::from("not-a-token");
    let refused = w.graph.message(&stranger, &original.id).await;
    assert!(
        matches!(refused, Err(GraphError::Unauthorized)),
        "{refused:?}"
    );

    let token = w.token(ANN, &ALL);
    let missing = w.graph.message(&token, "AAMkAD-no-such-message").await;
    assert!(matches!(missing, Err(GraphError::NotFound)), "{missing:?}");
    // An id is one path segment, whatever it holds.
    let odd = w.graph.message(&token, "../../me/messages?$top=1").await;
    assert!(matches!(odd, Err(GraphError::NotFound)), "{odd:?}");

    w.sandbox
        .microsoft()
        .fail_graph_calls(GraphFault::throttle(1, 7));
    let throttled = w.graph.message(&token, &original.id).await;
    assert!(
        matches!(
            throttled,
            Err(GraphError::Throttled {
                retry_after: Some(wait)
            }) if wait == Duration::from_secs(7)
        ),
        "{throttled:?}"
    );
    w.sandbox
        .microsoft()
        .fail_graph_calls(GraphFault::status(503, 1));
    let busy = w.graph.message(&token, &original.id).await;
    assert!(
        matches!(busy, Err(GraphError::Throttled { .. })),
        "{busy:?}"
    );
    assert!(w.graph.message(&token, &original.id).await.is_ok());
}
