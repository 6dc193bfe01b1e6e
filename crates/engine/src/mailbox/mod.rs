//! What the engine needs from a mailbox, whatever the provider: new
//! messages since a cursor (and a catch-up when the cursor is gone), a
//! message, a thread, a reply draft in a thread, a send, and finding a sent
//! message or a draft by its Message-ID. Auto-draft and the workflow runner
//! are written once over [`Mailbox`]; a new provider is a new variant here
//! and its client in `providers`, not a new pipeline.
//!
//! A mailbox is opened for one job ([`Mailbox::open`]): the connection and
//! its token are read once, and a token the provider rejects is refreshed
//! inside the session.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::mail::{MailboxCursor, Message, MessageRef, Thread};
use domain::pubsub::PubSubTopic;
use domain::scopes::{Capability, IntegrationType};
use domain::{IntegrationId, WorkspaceId};
use providers::google::gmail::Gmail;
use providers::google::message::SOURCE_HEADER;
use secrecy::SecretString;
use store::integrations::Integration;

use crate::vault::{GmailSession, Vault, VaultError};

mod imap;
mod outlook;

pub use imap::ImapMailbox;
pub use outlook::OutlookMailbox;

/// The most inbox messages a catch-up lists.
pub const CATCH_UP_LIMIT: usize = 2_000;

/// What changed in the inbox since a cursor.
#[derive(Debug)]
pub enum Changes {
    /// Messages added to the inbox, oldest first, and the cursor after them.
    Found {
        messages: Vec<MessageRef>,
        cursor: MailboxCursor,
    },
    /// The provider no longer knows the cursor (too old): list the inbox
    /// since a time instead ([`Mailbox::inbox_since`]).
    CursorGone,
}

/// A mailbox's changes are announced (pushed) until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    pub expires_at: DateTime<Utc>,
    /// Graph's subscription id (`None` for Gmail's watch, one per address).
    pub subscription_id: Option<String>,
}

/// Whether a sent message is the person's own writing: not automatic mail
/// (RFC 3834), not a message Mailwright wrote, not a forward (someone
/// else's text).
fn written_by_the_person(message: &Message) -> bool {
    let automatic = message
        .header("Auto-Submitted")
        .is_some_and(|value| !value.trim().eq_ignore_ascii_case("no"));
    let ours = message
        .header("Message-ID")
        .is_some_and(|id| id.contains("@mailwright>"))
        || message.header(SOURCE_HEADER).is_some();
    let subject = message
        .header("Subject")
        .unwrap_or_default()
        .trim()
        .to_lowercase();
    let forward = subject.starts_with("fwd:") || subject.starts_with("fw:");
    !automatic && !ours && !forward
}

/// A draft just made: its id, and the id of the message it holds (which
/// every edit replaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedDraft {
    pub id: String,
    pub message_id: Option<String>,
}

/// An open mailbox.
// A job holds one, briefly: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Mailbox {
    Gmail(GmailMailbox),
    Imap(ImapMailbox),
    Outlook(OutlookMailbox),
}

/// Gmail, through the vault's session.
pub struct GmailMailbox {
    vault: Arc<Vault>,
    gmail: Gmail,
    session: GmailSession,
}

impl std::fmt::Debug for GmailMailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GmailMailbox")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl Mailbox {
    /// Open connection `id` of `workspace` for the calls of one job. A
    /// connection that is not a mailbox (a calendar) is not found.
    pub async fn open(
        vault: &Arc<Vault>,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<Mailbox, VaultError> {
        // One read for every kind: for an IMAP mailbox, the session's
        // "token" is its password (it never expires, so is never refreshed).
        let session = vault.gmail_session(workspace, id).await?;
        match session.integration().integration_type {
            IntegrationType::Gmail => Ok(Mailbox::Gmail(GmailMailbox {
                vault: Arc::clone(vault),
                gmail: vault.gmail().clone(),
                session,
            })),
            IntegrationType::Imap => {
                let integration = session.integration().clone();
                let account = vault
                    .mail_server_account_with(&integration, session.token().0)
                    .await?;
                Ok(Mailbox::Imap(ImapMailbox::new(
                    Arc::clone(vault),
                    integration,
                    account,
                )))
            }
            IntegrationType::Outlook => {
                let graph = vault.microsoft().ok_or(VaultError::NotConfigured)?.graph();
                Ok(Mailbox::Outlook(OutlookMailbox::new(
                    Arc::clone(vault),
                    graph,
                    session,
                )))
            }
            IntegrationType::Calendar => Err(VaultError::NotFound),
        }
    }

    /// The connection, as read when the mailbox was opened.
    pub fn integration(&self) -> &Integration {
        match self {
            Mailbox::Gmail(gmail) => gmail.session.integration(),
            Mailbox::Imap(imap) => imap.integration(),
            Mailbox::Outlook(outlook) => outlook.integration(),
        }
    }

    /// Where the mailbox is now: changes after this are new (`None` when
    /// the provider did not say).
    pub async fn cursor(&self) -> Result<Option<MailboxCursor>, VaultError> {
        match self {
            Mailbox::Gmail(gmail) => {
                let profile = gmail
                    .call(Capability::ReadMail, |g, token| async move {
                        g.profile(&token).await
                    })
                    .await?;
                Ok(profile
                    .history_id
                    .as_deref()
                    .and_then(|id| id.parse::<i64>().ok())
                    .map(MailboxCursor::at))
            }
            Mailbox::Imap(imap) => imap.cursor().await.map(|at| Some(MailboxCursor::at(at))),
            Mailbox::Outlook(outlook) => outlook.cursor().await.map(Some),
        }
    }

    /// Where a catch-up leaves the cursor, `stored` being the one that was
    /// gone: Gmail's history ids only grow, so never behind `stored`; an
    /// IMAP cursor after a new UIDVALIDITY is simply the new one.
    pub async fn cursor_after_catch_up(
        &self,
        stored: &MailboxCursor,
    ) -> Result<MailboxCursor, VaultError> {
        if let Mailbox::Outlook(outlook) = self {
            return outlook.cursor_after_catch_up(stored).await;
        }
        let now = self.cursor().await?;
        Ok(match self {
            Mailbox::Gmail(_) => MailboxCursor::at(
                now.map_or(stored.position, |now| now.position)
                    .max(stored.position),
            ),
            Mailbox::Imap(_) | Mailbox::Outlook(_) => now.unwrap_or_else(|| stored.clone()),
        })
    }

    /// Ask the provider to announce new inbox mail (Gmail: `users.watch`
    /// publishing to `topic`); until when it will.
    pub async fn watch(&self, topic: &PubSubTopic) -> Result<Watch, VaultError> {
        match self {
            Mailbox::Gmail(gmail) => {
                // A refused topic is the operator's to fix, not the
                // connection's: it is not written on the connection.
                let grant = gmail
                    .call_without_recording_refusals(Capability::ReadMail, |g, token| async move {
                        g.watch(&token, topic.as_str()).await
                    })
                    .await?;
                let expires_at = grant.expires_at().ok_or_else(|| {
                    VaultError::Rejected("Gmail's watch answer has no readable expiration.".into())
                })?;
                Ok(Watch {
                    expires_at,
                    subscription_id: None,
                })
            }
            Mailbox::Imap(_) => Err(VaultError::Rejected(
                "an IMAP mailbox is followed by IDLE, not a Pub/Sub watch".into(),
            )),
            Mailbox::Outlook(_) => Err(VaultError::Rejected(
                "an Outlook mailbox is announced by a Graph subscription, not a Pub/Sub watch"
                    .into(),
            )),
        }
    }

    /// Outlook: make a Graph subscription announcing new inbox mail to
    /// `notification_url` with `client_state`, until about `expires`.
    pub async fn subscribe(
        &self,
        notification_url: &str,
        client_state: &SecretString,
        expires: DateTime<Utc>,
    ) -> Result<Watch, VaultError> {
        match self {
            Mailbox::Outlook(outlook) => {
                let made = outlook
                    .subscribe(notification_url, client_state, expires)
                    .await?;
                Ok(Watch {
                    expires_at: made.expiration_date_time,
                    subscription_id: Some(made.id),
                })
            }
            Mailbox::Gmail(_) | Mailbox::Imap(_) => Err(not_graph()),
        }
    }

    /// Outlook: move subscription `id`'s end to about `expires`, and its
    /// notifications to `notification_url` (the public URL may have moved)
    /// ([`VaultError::Gone`]: Graph no longer has it).
    pub async fn renew_subscription(
        &self,
        id: &str,
        notification_url: &str,
        expires: DateTime<Utc>,
    ) -> Result<Watch, VaultError> {
        match self {
            Mailbox::Outlook(outlook) => {
                let renewed = outlook
                    .renew_subscription(id, notification_url, expires)
                    .await?;
                Ok(Watch {
                    expires_at: renewed.expiration_date_time,
                    subscription_id: Some(renewed.id),
                })
            }
            Mailbox::Gmail(_) | Mailbox::Imap(_) => Err(not_graph()),
        }
    }

    /// Outlook: delete subscription `id` (one Graph no longer has is fine).
    pub async fn unsubscribe(&self, id: &str) -> Result<(), VaultError> {
        match self {
            Mailbox::Outlook(outlook) => outlook.unsubscribe(id).await,
            Mailbox::Gmail(_) | Mailbox::Imap(_) => Err(not_graph()),
        }
    }

    /// No more announcements for this mailbox (Gmail: `users.stop`).
    pub async fn stop_watching(&self) -> Result<(), VaultError> {
        match self {
            Mailbox::Gmail(gmail) => {
                gmail
                    .call(Capability::ReadMail, |g, token| async move {
                        g.stop(&token).await
                    })
                    .await
            }
            Mailbox::Imap(_) | Mailbox::Outlook(_) => Ok(()),
        }
    }

    /// The messages added to the inbox after `cursor`.
    pub async fn changes_since(&self, cursor: &MailboxCursor) -> Result<Changes, VaultError> {
        match self {
            Mailbox::Gmail(gmail) => gmail.changes_since(cursor.position).await,
            Mailbox::Imap(imap) => imap.changes_since(cursor.position).await,
            Mailbox::Outlook(outlook) => outlook.changes_since(cursor).await,
        }
    }

    /// The inbox's messages received after `since`, oldest first, at most
    /// about [`CATCH_UP_LIMIT`].
    pub async fn inbox_since(&self, since: DateTime<Utc>) -> Result<Vec<MessageRef>, VaultError> {
        match self {
            Mailbox::Gmail(gmail) => gmail.inbox_since(since).await,
            Mailbox::Imap(imap) => imap.inbox_since(since).await,
            Mailbox::Outlook(outlook) => outlook.inbox_since(since).await,
        }
    }

    /// The newest message in the inbox, if any.
    pub async fn newest_inbox_message(&self) -> Result<Option<MessageRef>, VaultError> {
        match self {
            Mailbox::Gmail(gmail) => {
                let page = gmail
                    .call(Capability::ReadMail, |g, token| async move {
                        g.inbox_messages(&token, "", 1, None).await
                    })
                    .await?;
                Ok(page.messages.into_iter().next().map(|m| m.into_mail()))
            }
            Mailbox::Imap(imap) => imap.newest_inbox_message().await,
            Mailbox::Outlook(outlook) => outlook.newest_inbox_message().await,
        }
    }

    /// The texts of the newest `max` messages the person sent (a message
    /// gone meanwhile is left out).
    pub async fn sent_texts(&self, max: usize) -> Result<Vec<String>, VaultError> {
        let refs = match self {
            Mailbox::Imap(imap) => {
                return Ok(imap
                    .sent_messages(max)
                    .await?
                    .into_iter()
                    .filter(written_by_the_person)
                    .map(|message| message.text)
                    .collect());
            }
            Mailbox::Outlook(outlook) => {
                return Ok(outlook
                    .sent_messages(max)
                    .await?
                    .into_iter()
                    .filter(written_by_the_person)
                    .map(|message| message.text)
                    .collect());
            }
            Mailbox::Gmail(gmail) => {
                let max = u32::try_from(max).unwrap_or(u32::MAX);
                gmail
                    .call(Capability::ReadMail, |g, token| async move {
                        g.sent_messages(&token, max).await
                    })
                    .await?
                    .messages
            }
        };
        let mut texts = Vec::new();
        for reference in refs.into_iter().take(max) {
            match self.message(&reference.id).await {
                Ok(message) if written_by_the_person(&message) => texts.push(message.text),
                Ok(_) | Err(VaultError::Gone) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(texts)
    }

    /// Message `id`, with its headers and text. A message the provider no
    /// longer has is [`VaultError::Gone`].
    pub async fn message(&self, id: &str) -> Result<Message, VaultError> {
        match self {
            Mailbox::Gmail(gmail) => {
                let message = gmail
                    .call(Capability::ReadMail, |g, token| async move {
                        g.message(&token, id).await
                    })
                    .await?;
                Ok(message.into_mail())
            }
            Mailbox::Imap(imap) => imap.message(id).await,
            Mailbox::Outlook(outlook) => outlook.message(id).await,
        }
    }

    /// Thread `id`: its messages with their headers (who wrote them, which
    /// drafts Mailwright made: `X-Mailwright-Source`) and texts, which
    /// the drafter reads as the conversation so far.
    pub async fn thread(&self, id: &str) -> Result<Thread, VaultError> {
        match self {
            Mailbox::Gmail(gmail) => {
                let thread = gmail
                    .call(Capability::ReadMail, |g, token| async move {
                        g.thread(&token, id).await
                    })
                    .await?;
                let mut thread = thread.into_mail();
                if thread.id.is_empty() {
                    thread.id = id.to_owned();
                }
                Ok(thread)
            }
            Mailbox::Imap(imap) => imap.thread(id).await,
            Mailbox::Outlook(outlook) => outlook.thread(id).await,
        }
    }

    /// Create a draft of the RFC 5322 message `raw`, in `thread_id` when
    /// given (a reply); the draft's id.
    pub async fn create_draft(
        &self,
        raw: &[u8],
        thread_id: Option<&str>,
    ) -> Result<CreatedDraft, VaultError> {
        match self {
            Mailbox::Gmail(gmail) => {
                let draft = gmail
                    .call(Capability::Draft, |g, token| async move {
                        g.create_draft(&token, raw, thread_id).await
                    })
                    .await?;
                Ok(CreatedDraft {
                    message_id: draft.message.map(|message| message.id),
                    id: draft.id,
                })
            }
            // The draft's headers thread it (In-Reply-To, References).
            Mailbox::Imap(imap) => imap.create_draft(raw).await,
            // `createReply` threads it (the original found by In-Reply-To).
            Mailbox::Outlook(outlook) => outlook.create_draft(raw).await,
        }
    }

    /// Send the RFC 5322 message `raw`.
    pub async fn send(&self, raw: &[u8]) -> Result<MessageRef, VaultError> {
        match self {
            Mailbox::Gmail(gmail) => {
                let sent = gmail
                    .call(Capability::Send, |g, token| async move {
                        g.send(&token, raw).await
                    })
                    .await?;
                Ok(sent.into_mail())
            }
            Mailbox::Imap(imap) => imap.send(raw).await,
            Mailbox::Outlook(outlook) => outlook.send(raw).await,
        }
    }

    /// Draft `id`'s message as it is now; `None` when the draft is gone
    /// (sent or deleted).
    pub async fn draft(&self, id: &str) -> Result<Option<Message>, VaultError> {
        match self {
            Mailbox::Gmail(gmail) => {
                let draft = gmail
                    .call(Capability::Draft, |g, token| async move {
                        g.draft(&token, id).await
                    })
                    .await?;
                Ok(draft.map(|message| message.into_mail()))
            }
            Mailbox::Imap(imap) => imap.draft(id).await,
            Mailbox::Outlook(outlook) => outlook.draft(id).await,
        }
    }

    /// Delete draft `id` (one already gone counts as deleted).
    pub async fn delete_draft(&self, id: &str) -> Result<(), VaultError> {
        match self {
            Mailbox::Gmail(gmail) => {
                gmail
                    .call(Capability::Draft, |g, token| async move {
                        g.delete_draft(&token, id).await
                    })
                    .await
            }
            Mailbox::Imap(imap) => imap.delete_draft(id).await,
            Mailbox::Outlook(outlook) => outlook.delete_draft(id).await,
        }
    }

    /// The person's signature as plain text (`None`: they have none).
    pub async fn signature(&self) -> Result<Option<String>, VaultError> {
        match self {
            Mailbox::Gmail(gmail) => {
                let html = gmail
                    .call(Capability::ReadMail, |g, token| async move {
                        g.signature(&token).await
                    })
                    .await?;
                Ok(html
                    .map(|html| providers::google::message::signature_text(&html))
                    .filter(|text| !text.is_empty()))
            }
            // IMAP keeps no signature; the person's mail client does (and
            // Graph does not expose Outlook's).
            Mailbox::Imap(_) | Mailbox::Outlook(_) => Ok(None),
        }
    }

    /// Send the RFC 5322 reply `raw` in thread `thread_id`.
    pub async fn send_reply(&self, raw: &[u8], thread_id: &str) -> Result<MessageRef, VaultError> {
        match self {
            Mailbox::Gmail(gmail) => {
                let sent = gmail
                    .call(Capability::Send, |g, token| async move {
                        g.send_in_thread(&token, raw, thread_id).await
                    })
                    .await?;
                Ok(sent.into_mail())
            }
            // The reply's headers thread it.
            Mailbox::Imap(imap) => imap.send(raw).await,
            Mailbox::Outlook(outlook) => outlook.send(raw).await,
        }
    }

    /// The mailbox's labels as `(id, name)`: the provider's own (`INBOX`,
    /// `IMPORTANT`, whose name is their id) and the person's.
    pub async fn labels(&self) -> Result<Vec<(String, String)>, VaultError> {
        match self {
            Mailbox::Gmail(gmail) => {
                let labels = gmail
                    .call(Capability::ReadMail, |g, token| async move {
                        g.labels(&token).await
                    })
                    .await?;
                Ok(labels
                    .into_iter()
                    .map(|label| (label.id, label.name))
                    .collect())
            }
            // Labels are Gmail's.
            Mailbox::Imap(_) | Mailbox::Outlook(_) => Ok(Vec::new()),
        }
    }

    /// The id of the label named `name` (case-insensitive; a system label
    /// by its id too), created first when `create` and the mailbox has
    /// none; `None` when it has none and `create` is false.
    pub async fn label_id(&self, name: &str, create: bool) -> Result<Option<String>, VaultError> {
        let find = |labels: &[(String, String)]| {
            labels
                .iter()
                .find(|(id, label)| {
                    label.eq_ignore_ascii_case(name) || id.eq_ignore_ascii_case(name)
                })
                .map(|(id, _)| id.clone())
        };
        if let Some(id) = find(&self.labels().await?) {
            return Ok(Some(id));
        }
        if !create {
            return Ok(None);
        }
        match self {
            Mailbox::Gmail(gmail) => {
                let created = gmail
                    .call_without_recording_refusals(Capability::Labels, |g, token| async move {
                        g.create_label(&token, name).await
                    })
                    .await;
                match created {
                    Ok(label) => Ok(Some(label.id)),
                    // Made meanwhile (another run, the person): it exists now.
                    Err(VaultError::Rejected(_)) => Ok(find(&self.labels().await?)),
                    Err(error) => Err(error),
                }
            }
            Mailbox::Imap(_) | Mailbox::Outlook(_) => Err(labels_are_gmails()),
        }
    }

    /// Add and remove label ids on message `id`.
    pub async fn change_labels(
        &self,
        id: &str,
        add: &[&str],
        remove: &[&str],
    ) -> Result<(), VaultError> {
        match self {
            Mailbox::Gmail(gmail) => gmail
                .call(Capability::Labels, |g, token| async move {
                    g.modify_labels(&token, id, add, remove).await
                })
                .await
                .map(drop),
            Mailbox::Imap(_) | Mailbox::Outlook(_) => Err(labels_are_gmails()),
        }
    }

    /// The message whose `Message-ID` is `rfc822_message_id`, if the
    /// mailbox has one (spam and trash included).
    pub async fn find_message(
        &self,
        rfc822_message_id: &str,
    ) -> Result<Option<MessageRef>, VaultError> {
        match self {
            Mailbox::Gmail(gmail) => {
                let found = gmail
                    .call(Capability::ReadMail, |g, token| async move {
                        g.find_message(&token, rfc822_message_id).await
                    })
                    .await?;
                Ok(found.map(|message| message.into_mail()))
            }
            Mailbox::Imap(imap) => imap.find_message(rfc822_message_id).await,
            Mailbox::Outlook(outlook) => outlook.find_message(rfc822_message_id).await,
        }
    }

    /// The id of the draft whose `Message-ID` is `rfc822_message_id`, if any.
    pub async fn find_draft(&self, rfc822_message_id: &str) -> Result<Option<String>, VaultError> {
        match self {
            Mailbox::Gmail(gmail) => {
                let found = gmail
                    .call(Capability::Draft, |g, token| async move {
                        g.find_draft(&token, rfc822_message_id).await
                    })
                    .await?;
                Ok(found.map(|draft| draft.id))
            }
            Mailbox::Imap(imap) => imap.find_draft(rfc822_message_id).await,
            Mailbox::Outlook(outlook) => outlook.find_draft(rfc822_message_id).await,
        }
    }
}

fn labels_are_gmails() -> VaultError {
    VaultError::Rejected("labels are Gmail's: this mailbox has none to add or remove".into())
}

fn not_graph() -> VaultError {
    VaultError::Rejected("only an Outlook mailbox has Graph subscriptions".into())
}

impl GmailMailbox {
    /// One Gmail call in the session; `call` gets the client and a token.
    async fn call<'a, T, F, Fut>(&'a self, needs: Capability, call: F) -> Result<T, VaultError>
    where
        F: Fn(&'a Gmail, secrecy::SecretString) -> Fut,
        Fut: Future<Output = Result<T, providers::google::gmail::GmailError>>,
    {
        self.vault
            .call(&self.session, needs, |token| call(&self.gmail, token))
            .await
    }

    /// [`GmailMailbox::call`] whose refusal is not the connection's.
    async fn call_without_recording_refusals<'a, T, F, Fut>(
        &'a self,
        needs: Capability,
        call: F,
    ) -> Result<T, VaultError>
    where
        F: Fn(&'a Gmail, secrecy::SecretString) -> Fut,
        Fut: Future<Output = Result<T, providers::google::gmail::GmailError>>,
    {
        self.vault
            .call_without_recording_refusals(&self.session, needs, |token| call(&self.gmail, token))
            .await
    }

    async fn changes_since(&self, cursor: i64) -> Result<Changes, VaultError> {
        let start = u64::try_from(cursor).unwrap_or(0);
        let mut found: Vec<MessageRef> = Vec::new();
        let mut page_token: Option<String> = None;
        let mut latest = cursor;
        loop {
            let page_token_now = page_token.clone();
            let page = match self
                .call(Capability::ReadMail, |g, token| {
                    let page_token = page_token_now.clone();
                    async move { g.inbox_history(&token, start, page_token.as_deref()).await }
                })
                .await
            {
                Ok(page) => page,
                // Gmail answers 404 for a start id it no longer keeps.
                Err(VaultError::Gone) => return Ok(Changes::CursorGone),
                Err(error) => return Err(error),
            };
            for record in page.history {
                for added in record.messages_added {
                    let added = added.message.into_mail();
                    if found.iter().all(|m| m.id != added.id) {
                        found.push(added);
                    }
                }
            }
            if let Some(history_id) = page
                .history_id
                .as_deref()
                .and_then(|h| h.parse::<i64>().ok())
            {
                latest = latest.max(history_id);
            }
            match page.next_page_token {
                Some(token) => page_token = Some(token),
                None => break,
            }
        }
        Ok(Changes::Found {
            messages: found,
            cursor: MailboxCursor::at(latest),
        })
    }

    async fn inbox_since(&self, since: DateTime<Utc>) -> Result<Vec<MessageRef>, VaultError> {
        let query = format!("after:{}", since.timestamp());
        let mut found: Vec<MessageRef> = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let page_token_now = page_token.clone();
            let query = query.as_str();
            let page = self
                .call(Capability::ReadMail, |g, token| {
                    let page_token = page_token_now.clone();
                    async move {
                        g.inbox_messages(&token, query, 500, page_token.as_deref())
                            .await
                    }
                })
                .await?;
            found.extend(page.messages.into_iter().map(|m| m.into_mail()));
            match page.next_page_token {
                Some(token) if found.len() < CATCH_UP_LIMIT => page_token = Some(token),
                _ => break,
            }
        }
        // Gmail lists newest first; changes come oldest first.
        found.reverse();
        Ok(found)
    }
}
