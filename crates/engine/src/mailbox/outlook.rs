//! An Outlook (Microsoft 365) mailbox through Microsoft Graph.
//!
//! - **Cursor**: a delta round's `@odata.deltaLink` on the inbox, with a
//!   position that counts the rounds (started at the epoch milliseconds of
//!   the first one, so a restarted cursor never looks older than a stored
//!   one). An expired link (410) is [`Changes::CursorGone`]: catch-up.
//! - **Messages** are read as MIME (`$value`), like IMAP's, with Graph's
//!   `conversationId` as their thread.
//! - **Drafts and sends** carry a marker (a named extended property valued
//!   with the message's `Message-ID`): a draft is adopted and a send found
//!   in Sent Items instead of being made twice (decision 0024). A reply is
//!   made with `createReply`, so Outlook threads it.
//!
//! Graph's refusals are put in Gmail's terms for [`Vault::call`], which
//! refreshes a refused token once, records a missing permission on the
//! connection and turns 429/503 into a wait with `Retry-After`.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::mail::{MailboxCursor, Message, MessageRef, Placement, Thread};
use domain::scopes::Capability;
use providers::google::gmail::GmailError;
use providers::google::message::SOURCE_HEADER;
use providers::imap::message::{header_message_id, to_mail};
use providers::microsoft::graph::{
    DeltaItem, Folder, Graph, GraphError, GraphMessage, Marker, Subscription,
};
use secrecy::SecretString;
use serde_json::{Value, json};
use store::integrations::Integration;

use super::{CATCH_UP_LIMIT, Changes, CreatedDraft};
use crate::vault::{GmailSession, Vault, VaultError};

/// The most messages of a conversation read for the drafter.
const THREAD_LIMIT: usize = 50;
/// A new cursor starts this long before now: Exchange's clock may be behind
/// ours, and Graph keeps the start in every later link.
const CURSOR_CLOCK_MARGIN: chrono::Duration = chrono::Duration::minutes(10);

pub struct OutlookMailbox {
    vault: Arc<Vault>,
    graph: Graph,
    session: GmailSession,
    /// The folders that decide where a message is filed, read once.
    places: tokio::sync::OnceCell<Places>,
}

/// The ids of the well-known folders a message's `parentFolderId` is
/// compared with (empty: the mailbox has no such folder).
struct Places {
    inbox: String,
    junk: String,
    deleted: String,
}

impl std::fmt::Debug for OutlookMailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutlookMailbox")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// Graph's refusal in the terms [`Vault::call`] acts on. An expired delta
/// link is a position the provider no longer keeps, like Gmail's 404 on an
/// old history id.
fn as_gmail(error: GraphError) -> GmailError {
    match error {
        GraphError::Unauthorized => GmailError::Unauthorized,
        GraphError::Forbidden { .. } => GmailError::InsufficientPermissions,
        GraphError::NotFound | GraphError::DeltaExpired => GmailError::NotFound,
        GraphError::Throttled { retry_after } => GmailError::Unavailable {
            reason: "throttled".into(),
            retry_after,
        },
        GraphError::Unavailable(reason) => GmailError::Unavailable {
            reason,
            retry_after: None,
        },
        GraphError::Rejected { status, reason } => GmailError::Rejected { status, reason },
    }
}

fn reference(message: &GraphMessage) -> MessageRef {
    MessageRef {
        id: message.id.clone(),
        thread_id: message
            .conversation_id
            .clone()
            .unwrap_or_else(|| message.id.clone()),
    }
}

fn recipients(addresses: &[String]) -> Value {
    Value::Array(
        addresses
            .iter()
            .map(|address| json!({"emailAddress": {"address": address}}))
            .collect(),
    )
}

impl OutlookMailbox {
    pub(super) fn new(vault: Arc<Vault>, graph: Graph, session: GmailSession) -> OutlookMailbox {
        OutlookMailbox {
            vault,
            graph,
            session,
            places: tokio::sync::OnceCell::new(),
        }
    }

    /// The inbox's, Junk Email's and Deleted Items' ids (three calls, on
    /// the first message read).
    async fn places(&self) -> Result<&Places, VaultError> {
        self.places
            .get_or_try_init(|| async {
                let id_of = |folder: Folder| async move {
                    match self
                        .call(Capability::ReadMail, |graph, token| async move {
                            graph.folder_id(&token, folder).await
                        })
                        .await
                    {
                        Ok(id) => Ok(id),
                        Err(VaultError::Gone) => Ok(String::new()),
                        Err(error) => Err(error),
                    }
                };
                Ok(Places {
                    inbox: id_of(Folder::Inbox).await?,
                    junk: id_of(Folder::JunkEmail).await?,
                    deleted: id_of(Folder::DeletedItems).await?,
                })
            })
            .await
    }

    pub(super) fn integration(&self) -> &Integration {
        self.session.integration()
    }

    async fn call<'a, T, F, Fut>(&'a self, needs: Capability, call: F) -> Result<T, VaultError>
    where
        F: Fn(&'a Graph, SecretString) -> Fut,
        Fut: Future<Output = Result<T, GraphError>>,
    {
        self.vault
            .call(&self.session, needs, |token| {
                let answer = call(&self.graph, token);
                async move { answer.await.map_err(as_gmail) }
            })
            .await
    }

    /// [`OutlookMailbox::call`] whose refusal is not the connection's (a
    /// subscription Graph could not validate is the server's to fix).
    async fn call_without_recording_refusals<'a, T, F, Fut>(
        &'a self,
        needs: Capability,
        call: F,
    ) -> Result<T, VaultError>
    where
        F: Fn(&'a Graph, SecretString) -> Fut,
        Fut: Future<Output = Result<T, GraphError>>,
    {
        self.vault
            .call_without_recording_refusals(&self.session, needs, |token| {
                let answer = call(&self.graph, token);
                async move { answer.await.map_err(as_gmail) }
            })
            .await
    }

    /// A Graph subscription announcing new inbox mail to `notification_url`
    /// until about `expires` (Graph validates the URL before it answers).
    pub(super) async fn subscribe(
        &self,
        notification_url: &str,
        client_state: &SecretString,
        expires: DateTime<Utc>,
    ) -> Result<Subscription, VaultError> {
        self.call_without_recording_refusals(Capability::ReadMail, |graph, token| async move {
            graph
                .subscribe(&token, notification_url, client_state, expires)
                .await
        })
        .await
    }

    /// Move subscription `id`'s end to `expires` and its notifications to
    /// `notification_url` ([`VaultError::Gone`]: Graph no longer has it).
    pub(super) async fn renew_subscription(
        &self,
        id: &str,
        notification_url: &str,
        expires: DateTime<Utc>,
    ) -> Result<Subscription, VaultError> {
        self.call_without_recording_refusals(Capability::ReadMail, |graph, token| async move {
            graph.renew(&token, id, notification_url, expires).await
        })
        .await
    }

    pub(super) async fn unsubscribe(&self, id: &str) -> Result<(), VaultError> {
        self.call_without_recording_refusals(Capability::ReadMail, |graph, token| async move {
            graph.unsubscribe(&token, id).await
        })
        .await
    }

    /// Where the inbox is now: a delta round from this moment.
    pub(super) async fn cursor(&self) -> Result<MailboxCursor, VaultError> {
        let now = Utc::now();
        let since = now - CURSOR_CLOCK_MARGIN;
        let round = self
            .call(Capability::ReadMail, |graph, token| async move {
                graph.delta_start(&token, Folder::Inbox, since).await
            })
            .await?;
        Ok(MailboxCursor {
            position: now.timestamp_millis(),
            link: Some(round.delta_link),
        })
    }

    pub(super) async fn cursor_after_catch_up(
        &self,
        stored: &MailboxCursor,
    ) -> Result<MailboxCursor, VaultError> {
        let mut cursor = self.cursor().await?;
        cursor.position = cursor.position.max(stored.position + 1);
        Ok(cursor)
    }

    pub(super) async fn changes_since(
        &self,
        cursor: &MailboxCursor,
    ) -> Result<Changes, VaultError> {
        let Some(link) = cursor.link.as_deref() else {
            return Ok(Changes::CursorGone);
        };
        let round = match self
            .call(Capability::ReadMail, |graph, token| async move {
                graph.delta_next(&token, link).await
            })
            .await
        {
            Ok(round) => round,
            Err(VaultError::Gone) => return Ok(Changes::CursorGone),
            Err(error) => return Err(error),
        };
        Ok(Changes::Found {
            messages: new_mail(&round.items),
            cursor: cursor.next_link(round.delta_link),
        })
    }

    pub(super) async fn inbox_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<MessageRef>, VaultError> {
        let round = self
            .call(Capability::ReadMail, |graph, token| async move {
                graph.delta_start(&token, Folder::Inbox, since).await
            })
            .await?;
        let mut messages: Vec<&GraphMessage> = round
            .items
            .iter()
            .filter_map(|item| match item {
                DeltaItem::Changed(message) if message.is_draft != Some(true) => Some(&**message),
                _ => None,
            })
            .collect();
        // The newest ones when there are too many, oldest first.
        messages.sort_by_key(|message| std::cmp::Reverse(message.received_date_time));
        messages.truncate(CATCH_UP_LIMIT);
        messages.reverse();
        Ok(messages.into_iter().map(reference).collect())
    }

    pub(super) async fn newest_inbox_message(&self) -> Result<Option<MessageRef>, VaultError> {
        let newest = self
            .call(Capability::ReadMail, |graph, token| async move {
                graph.recent(&token, Folder::Inbox, 1).await
            })
            .await?;
        Ok(newest.first().map(reference))
    }

    /// The newest `max` messages the person sent, read whole.
    pub(super) async fn sent_messages(&self, max: usize) -> Result<Vec<Message>, VaultError> {
        let sent = self
            .call(Capability::ReadMail, |graph, token| async move {
                graph.recent(&token, Folder::SentItems, max).await
            })
            .await?;
        let mut messages = Vec::new();
        for message in &sent {
            match self.read(message).await {
                Ok(message) => messages.push(message),
                Err(VaultError::Gone) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(messages)
    }

    /// `message` read as MIME, filed as Graph says.
    async fn read(&self, message: &GraphMessage) -> Result<Message, VaultError> {
        let id = message.id.as_str();
        let raw = self
            .call(Capability::ReadMail, |graph, token| async move {
                graph.mime(&token, id).await
            })
            .await?;
        let draft = message.is_draft == Some(true);
        // Graph dates sent mail as received too: what the owner wrote is
        // told by its sender.
        let sent = !draft
            && message
                .from
                .as_ref()
                .and_then(|from| from.email_address.address.as_deref())
                .is_some_and(|from| from.eq_ignore_ascii_case(&self.integration().email));
        // Filed by its folder, as Gmail's labels file it: mail moved to
        // Junk Email or Deleted Items is spam or trash, mail moved out of
        // the inbox is not inbox mail.
        let placement = match message.parent_folder_id.as_deref() {
            Some(folder) if !folder.is_empty() => {
                let places = self.places().await?;
                Placement {
                    inbox: !draft && folder == places.inbox,
                    spam_or_trash: [&places.junk, &places.deleted]
                        .iter()
                        .any(|place| !place.is_empty() && folder == place.as_str()),
                    sent,
                    draft,
                    ..Placement::default()
                }
            }
            _ => Placement {
                inbox: !draft && !sent,
                sent,
                draft,
                ..Placement::default()
            },
        };
        let received = message
            .received_date_time
            .or(message.sent_date_time)
            .map_or(0, |at| at.timestamp_millis());
        let mut read = to_mail(message.id.clone(), &raw, placement, received);
        read.thread_id = reference(message).thread_id;
        // A reply draft made with createReply has no headers of ours: its
        // source is a property, said as the header the pipeline reads.
        if let Some(source) = message.source()
            && read.header(SOURCE_HEADER).is_none()
        {
            read.headers
                .push((SOURCE_HEADER.to_owned(), source.to_owned()));
        }
        Ok(read)
    }

    pub(super) async fn message(&self, id: &str) -> Result<Message, VaultError> {
        let message = self
            .call(Capability::ReadMail, |graph, token| async move {
                graph.message(&token, id).await
            })
            .await?;
        self.read(&message).await
    }

    pub(super) async fn thread(&self, id: &str) -> Result<Thread, VaultError> {
        let mut members = self
            .call(Capability::ReadMail, |graph, token| async move {
                graph.conversation(&token, id, THREAD_LIMIT).await
            })
            .await?;
        members.sort_by_key(|message| message.received_date_time.or(message.sent_date_time));
        let mut messages = Vec::new();
        for member in &members {
            match self.read(member).await {
                Ok(message) => messages.push(message),
                Err(VaultError::Gone) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(Thread {
            id: id.to_owned(),
            messages,
        })
    }

    /// The marked message of `folder`, if an earlier attempt made it.
    async fn marked(
        &self,
        folder: Folder,
        marker: &str,
    ) -> Result<Option<GraphMessage>, VaultError> {
        self.call(Capability::ReadMail, |graph, token| async move {
            graph.find_marked(&token, Some(folder), marker).await
        })
        .await
    }

    /// A draft of `raw` (a reply through `createReply` when it answers a
    /// message of this mailbox), marked with its `Message-ID`; one an
    /// earlier attempt made is adopted.
    async fn make_draft(&self, raw: &[u8]) -> Result<GraphMessage, VaultError> {
        let marker = header_message_id(raw).ok_or_else(|| {
            VaultError::Internal(anyhow::anyhow!("a message to draft has no Message-ID"))
        })?;
        if let Some(made) = self.marked(Folder::Drafts, &marker).await? {
            tracing::info!(integration = %self.integration().id, "adopted a draft an earlier attempt made");
            return Ok(made);
        }
        let parsed = to_mail(String::new(), raw, Placement::default(), 0);
        let replied = match parsed.header("In-Reply-To").and_then(|value| {
            providers::google::message::message_ids(value)
                .into_iter()
                .next()
        }) {
            Some(original) => {
                let original = original.as_str();
                self.call(Capability::ReadMail, |graph, token| async move {
                    graph.find_by_internet_id(&token, original).await
                })
                .await?
            }
            None => None,
        };
        let marker = Marker {
            message_id: marker.as_str(),
            source: parsed.header(SOURCE_HEADER),
        };
        // What the message says, replies included: a reply step's own
        // recipients and subject win over Graph's defaults.
        let addresses = |name: &str| -> Vec<String> {
            parsed
                .header(name)
                .map(providers::google::message::address_list)
                .unwrap_or_default()
        };
        let fields = json!({
            "subject": parsed.header("Subject").unwrap_or_default(),
            "body": {"contentType": "text", "content": parsed.text},
            "toRecipients": recipients(&addresses("To")),
            "ccRecipients": recipients(&addresses("Cc")),
            "bccRecipients": recipients(&addresses("Bcc")),
        });
        let fields = &fields;
        match replied {
            Some(original) => {
                let original = original.id.as_str();
                self.call(Capability::Draft, |graph, token| async move {
                    graph
                        .create_reply(&token, original, fields.clone(), marker)
                        .await
                })
                .await
            }
            None => {
                self.call(Capability::Draft, |graph, token| async move {
                    graph.create_draft(&token, fields.clone(), marker).await
                })
                .await
            }
        }
    }

    pub(super) async fn create_draft(&self, raw: &[u8]) -> Result<CreatedDraft, VaultError> {
        let draft = self.make_draft(raw).await?;
        Ok(CreatedDraft {
            message_id: Some(draft.id.clone()),
            id: draft.id,
        })
    }

    /// Send `raw` exactly once. Found anywhere but as a draft (Sent Items,
    /// the Outbox), an earlier attempt sent it. Found as a draft marked
    /// "sending", an earlier attempt may have handed it to Graph, whose
    /// send is asynchronous: it is not sent again, the step fails saying so.
    /// Otherwise the draft (made now or by an earlier attempt) is marked
    /// and sent.
    pub(super) async fn send(&self, raw: &[u8]) -> Result<MessageRef, VaultError> {
        let marker = header_message_id(raw).ok_or_else(|| {
            VaultError::Internal(anyhow::anyhow!("a message to send has no Message-ID"))
        })?;
        let marker = marker.as_str();
        let earlier = self
            .call(Capability::ReadMail, |graph, token| async move {
                graph.find_marked(&token, None, marker).await
            })
            .await?;
        let draft = match earlier {
            Some(sent) if sent.is_draft != Some(true) => {
                tracing::info!(integration = %self.integration().id, "the message was sent by an earlier attempt");
                return Ok(reference(&sent));
            }
            Some(draft) if draft.being_sent() => return Err(VaultError::SendUnconfirmed),
            Some(draft) => draft,
            None => self.make_draft(raw).await?,
        };
        let id = draft.id.as_str();
        self.call(Capability::Draft, |graph, token| async move {
            graph.mark_sending(&token, id, true).await
        })
        .await?;
        self.call(Capability::Send, |graph, token| async move {
            match graph.send_draft(&token, id).await {
                // Refused before Graph took it (throttled, denied, gone): a
                // later attempt may send the draft. A timeout or another
                // 5xx leaves the mark: then nobody knows.
                Err(
                    error @ (GraphError::Throttled { .. }
                    | GraphError::Forbidden { .. }
                    | GraphError::Unauthorized
                    | GraphError::NotFound
                    | GraphError::Rejected { .. }),
                ) => {
                    if let Err(unmark) = graph.mark_sending(&token, id, false).await {
                        tracing::warn!(error = %unmark, "cannot clear the sending mark of a refused send");
                    }
                    Err(error)
                }
                other => other,
            }
        })
        .await?;
        Ok(reference(&draft))
    }

    pub(super) async fn draft(&self, id: &str) -> Result<Option<Message>, VaultError> {
        let message = match self
            .call(Capability::ReadMail, |graph, token| async move {
                graph.message(&token, id).await
            })
            .await
        {
            Ok(message) => message,
            Err(VaultError::Gone) => return Ok(None),
            Err(error) => return Err(error),
        };
        if message.is_draft != Some(true) {
            return Ok(None);
        }
        self.read(&message).await.map(Some)
    }

    pub(super) async fn delete_draft(&self, id: &str) -> Result<(), VaultError> {
        match self
            .call(Capability::Draft, |graph, token| async move {
                graph.delete(&token, id).await
            })
            .await
        {
            Ok(()) | Err(VaultError::Gone) => Ok(()),
            Err(error) => Err(error),
        }
    }

    pub(super) async fn find_message(
        &self,
        rfc822_message_id: &str,
    ) -> Result<Option<MessageRef>, VaultError> {
        let found = self
            .call(Capability::ReadMail, |graph, token| async move {
                graph.find_by_internet_id(&token, rfc822_message_id).await
            })
            .await?;
        if found.is_some() {
            return Ok(found.as_ref().map(reference));
        }
        // Graph gives what Mailwright writes a Message-ID of its own: those
        // are found by the marker holding Mailwright's.
        let marked = self
            .call(Capability::ReadMail, |graph, token| async move {
                graph.find_marked(&token, None, rfc822_message_id).await
            })
            .await?;
        Ok(marked
            .filter(|message| message.is_draft != Some(true))
            .as_ref()
            .map(reference))
    }

    pub(super) async fn find_draft(
        &self,
        rfc822_message_id: &str,
    ) -> Result<Option<String>, VaultError> {
        Ok(self
            .marked(Folder::Drafts, rfc822_message_id)
            .await?
            .map(|draft| draft.id))
    }
}

/// The new inbox mail of a delta round, oldest first (drafts and removals
/// left out; a message changed again is listed once).
fn new_mail(items: &[DeltaItem]) -> Vec<MessageRef> {
    let mut messages: Vec<&GraphMessage> = Vec::new();
    for item in items {
        if let DeltaItem::Changed(message) = item
            && message.is_draft != Some(true)
            && messages.iter().all(|seen| seen.id != message.id)
        {
            messages.push(message);
        }
    }
    messages.sort_by_key(|message| message.received_date_time);
    messages.into_iter().map(reference).collect()
}
