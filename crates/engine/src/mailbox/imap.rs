//! An IMAP mailbox as a [`super::Mailbox`]: one IMAP connection per job
//! (opened on the first call, opened again after a broken one), drafts
//! appended to the Drafts folder, sends through SMTP submission with a copy
//! in Sent.
//!
//! Ids: a message is `UIDVALIDITY:UID:FOLDER` (stable until the server
//! renumbers the folder, which a changed UIDVALIDITY says); a conversation
//! is its first message's `Message-ID` (IMAP has no thread ids). The inbox
//! cursor is UIDVALIDITY and UIDNEXT in one number.

use domain::mail::MailboxCursor;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::mail::{Message, MessageRef, Placement, Thread};
use providers::google::message::message_ids;
use providers::imap::message::{header_message_id, to_mail};
use providers::imap::{
    self, Fetched, ImapError, ImapSession, ServerAccount, Submission, SubmissionError,
};
use store::integrations::Integration;
use tokio::sync::{Mutex, MutexGuard, OnceCell};

use super::{CATCH_UP_LIMIT, Changes, CreatedDraft};
use crate::vault::{Vault, VaultError};

const INBOX: &str = "INBOX";

/// Messages fetched by one command at most.
const FETCH_BATCH: usize = 200;
/// The most messages of one conversation read (the newest, per folder).
const THREAD_LIMIT: usize = 50;

/// The keyword (RFC 3501 flag) of a sent copy whose send the SMTP server
/// has not confirmed yet.
pub const UNCONFIRMED: &str = "$MailwrightUnconfirmed";

/// The inbox cursor: UIDVALIDITY in the high half, UIDNEXT in the low.
pub fn pack_cursor(uid_validity: u32, uid_next: u32) -> i64 {
    ((u64::from(uid_validity) << 32) | u64::from(uid_next)) as i64
}

pub fn unpack_cursor(cursor: i64) -> (u32, u32) {
    let bits = cursor as u64;
    ((bits >> 32) as u32, bits as u32)
}

/// A message's id in a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MessageId {
    uid_validity: u32,
    uid: u32,
    folder: String,
}

impl MessageId {
    fn parse(id: &str) -> Option<MessageId> {
        let mut parts = id.splitn(3, ':');
        let uid_validity = parts.next()?.parse().ok()?;
        let uid = parts.next()?.parse().ok()?;
        let folder = parts.next().filter(|f| !f.is_empty())?.to_owned();
        Some(MessageId {
            uid_validity,
            uid,
            folder,
        })
    }

    fn format(uid_validity: u32, uid: u32, folder: &str) -> String {
        format!("{uid_validity}:{uid}:{folder}")
    }
}

/// A message found by its Message-ID.
struct Found {
    id: String,
    thread_id: String,
    flags: Vec<String>,
}

/// The special folders of the mailbox, found once per job.
#[derive(Debug, Clone)]
struct Folders {
    drafts: String,
    sent: Option<String>,
}

pub struct ImapMailbox {
    vault: Arc<Vault>,
    integration: Integration,
    account: ServerAccount,
    session: Mutex<Option<ImapSession>>,
    folders: OnceCell<Folders>,
}

impl std::fmt::Debug for ImapMailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapMailbox")
            .field("integration", &self.integration.id)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

type Session<'a> = MutexGuard<'a, Option<ImapSession>>;

impl ImapMailbox {
    pub(super) fn new(vault: Arc<Vault>, integration: Integration, account: ServerAccount) -> Self {
        ImapMailbox {
            vault,
            integration,
            account,
            session: Mutex::new(None),
            folders: OnceCell::new(),
        }
    }

    pub(super) fn integration(&self) -> &Integration {
        &self.integration
    }

    /// The job's connection, logged in (opened now if it is not).
    async fn session(&self) -> Result<Session<'_>, VaultError> {
        let mut guard = self.session.lock().await;
        if guard.is_none() {
            *guard = Some(
                self.vault
                    .open_imap(&self.integration, &self.account)
                    .await?,
            );
        }
        Ok(guard)
    }

    /// An IMAP failure: a broken connection is dropped (the next call opens
    /// another), and the error is the vault's.
    fn failed(&self, guard: &mut Session<'_>, error: ImapError) -> VaultError {
        if !matches!(error, ImapError::Refused(_)) {
            guard.take();
        }
        self.vault.imap_failed(&self.integration, error)
    }

    async fn folders(&self) -> Result<&Folders, VaultError> {
        self.folders
            .get_or_try_init(|| async {
                let mut guard = self.session().await?;
                let session = guard.as_mut().expect("opened");
                let listed = match session.folders().await {
                    Ok(listed) => listed,
                    Err(error) => return Err(self.failed(&mut guard, error)),
                };
                let drafts = imap::drafts_folder(&listed)
                    .map(|folder| folder.name.clone())
                    .ok_or_else(|| {
                        VaultError::Rejected(format!(
                            "The mailbox {} has no Drafts folder any more: create one named Drafts.",
                            self.integration.email
                        ))
                    })?;
                let sent = imap::sent_folder(&listed).map(|folder| folder.name.clone());
                Ok(Folders { drafts, sent })
            })
            .await
    }

    fn placement(&self, folder: &str, folders: &Folders) -> Placement {
        Placement {
            inbox: folder.eq_ignore_ascii_case(INBOX),
            sent: folders.sent.as_deref() == Some(folder),
            draft: folder == folders.drafts,
            ..Placement::default()
        }
    }

    /// Select `folder`; its UIDVALIDITY and UIDNEXT.
    async fn select(
        &self,
        guard: &mut Session<'_>,
        folder: &str,
    ) -> Result<imap::FolderState, VaultError> {
        let session = guard.as_mut().expect("opened");
        match session.select(folder).await {
            Ok(state) => Ok(state),
            Err(error) => Err(self.failed(guard, error)),
        }
    }

    async fn search(
        &self,
        guard: &mut Session<'_>,
        criteria: &str,
    ) -> Result<Vec<u32>, VaultError> {
        let session = guard.as_mut().expect("opened");
        match session.uid_search(criteria).await {
            Ok(uids) => Ok(uids),
            Err(error) => Err(self.failed(guard, error)),
        }
    }

    /// `UID FETCH` of `uids`, in batches of [`FETCH_BATCH`], keeping only
    /// the messages asked for (a server may add unsolicited FETCH answers
    /// for other messages) and, when a body was asked for, only those that
    /// came with it.
    async fn fetch(
        &self,
        guard: &mut Session<'_>,
        uids: &[u32],
        body: &str,
    ) -> Result<Vec<Fetched>, VaultError> {
        let mut fetched = Vec::new();
        for batch in uids.chunks(FETCH_BATCH) {
            let set = uid_set(batch);
            let session = guard.as_mut().expect("opened");
            match session.uid_fetch(&set, body).await {
                Ok(answers) => fetched.extend(answers.into_iter().filter(|message| {
                    batch.contains(&message.uid) && (body.is_empty() || message.body.is_some())
                })),
                Err(error) => return Err(self.failed(guard, error)),
            }
        }
        Ok(fetched)
    }

    /// `folder`'s messages `uids` as mail (`BODY.PEEK[]`, or only the
    /// header), in UID order.
    async fn read(
        &self,
        guard: &mut Session<'_>,
        folder: &str,
        uid_validity: u32,
        uids: &[u32],
        whole: bool,
    ) -> Result<Vec<Message>, VaultError> {
        let folders = self.folders_known().clone();
        let body = if whole {
            "BODY.PEEK[]"
        } else {
            "BODY.PEEK[HEADER]"
        };
        let mut fetched = self.fetch(guard, uids, body).await?;
        fetched.sort_by_key(|message| message.uid);
        Ok(fetched
            .into_iter()
            .map(|message| {
                let id = MessageId::format(uid_validity, message.uid, folder);
                let received = message
                    .internal_date
                    .map(|at| at.timestamp_millis())
                    .unwrap_or(0);
                to_mail(
                    id,
                    message.body.as_deref().unwrap_or_default(),
                    self.placement(folder, &folders),
                    received,
                )
            })
            .collect())
    }

    /// The folders, once [`ImapMailbox::folders`] found them.
    fn folders_known(&self) -> &Folders {
        self.folders
            .get()
            .expect("folders are found before messages are read")
    }

    pub(super) async fn cursor(&self) -> Result<i64, VaultError> {
        let mut guard = self.session().await?;
        let state = self.select(&mut guard, INBOX).await?;
        Ok(pack_cursor(state.uid_validity, state.uid_next))
    }

    pub(super) async fn changes_since(&self, cursor: i64) -> Result<Changes, VaultError> {
        let (validity, next) = unpack_cursor(cursor);
        self.folders().await?;
        let mut guard = self.session().await?;
        let state = self.select(&mut guard, INBOX).await?;
        if state.uid_validity != validity {
            // The server renumbered the inbox: the old UIDs mean nothing.
            return Ok(Changes::CursorGone);
        }
        if state.uid_next <= next {
            return Ok(Changes::Found {
                messages: Vec::new(),
                cursor: MailboxCursor::at(cursor),
            });
        }
        let mut uids: Vec<u32> = self
            .search(&mut guard, &format!("UID {next}:*"))
            .await?
            .into_iter()
            // `n:*` always matches the highest UID, even one below n.
            .filter(|uid| *uid >= next)
            .collect();
        // A long backlog (a mailbox paused for days) is taken in parts,
        // oldest first: the cursor stops after the last one taken.
        let backlog = uids.len() > CATCH_UP_LIMIT;
        uids.truncate(CATCH_UP_LIMIT);
        let newest = uids.iter().max().map_or(next, |uid| uid + 1);
        let messages = self
            .read(&mut guard, INBOX, validity, &uids, false)
            .await?
            .into_iter()
            .map(reference)
            .collect();
        let upto = if backlog {
            newest
        } else {
            state.uid_next.max(newest)
        };
        Ok(Changes::Found {
            messages,
            cursor: MailboxCursor::at(pack_cursor(validity, upto)),
        })
    }

    pub(super) async fn inbox_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<MessageRef>, VaultError> {
        self.folders().await?;
        let mut guard = self.session().await?;
        let state = self.select(&mut guard, INBOX).await?;
        // SINCE is a date in the server's zone: a day earlier, then the
        // receipt times decide.
        let day = (since - chrono::Duration::days(1)).format("%-d-%b-%Y");
        let uids = self.search(&mut guard, &format!("SINCE {day}")).await?;
        let dated = self.fetch(&mut guard, &uids, "").await?;
        // INTERNALDATE counts whole seconds: a message of `since`'s own
        // second is in.
        let since_second =
            since - chrono::Duration::nanoseconds(i64::from(since.timestamp_subsec_nanos()));
        let mut recent: Vec<u32> = dated
            .into_iter()
            .filter(|message| message.internal_date.is_none_or(|at| at >= since_second))
            .map(|message| message.uid)
            .collect();
        recent.sort_unstable();
        let skip = recent.len().saturating_sub(CATCH_UP_LIMIT);
        let recent = &recent[skip..];
        Ok(self
            .read(&mut guard, INBOX, state.uid_validity, recent, false)
            .await?
            .into_iter()
            .map(reference)
            .collect())
    }

    pub(super) async fn newest_inbox_message(&self) -> Result<Option<MessageRef>, VaultError> {
        self.folders().await?;
        let mut guard = self.session().await?;
        let state = self.select(&mut guard, INBOX).await?;
        if state.exists == 0 {
            return Ok(None);
        }
        // `*` is the highest UID: one number, however large the inbox.
        let newest = self.search(&mut guard, "UID *").await?.into_iter().max();
        let Some(newest) = newest else {
            return Ok(None);
        };
        Ok(self
            .read(&mut guard, INBOX, state.uid_validity, &[newest], false)
            .await?
            .into_iter()
            .next()
            .map(reference))
    }

    /// The newest `max` messages of Sent, whole.
    pub(super) async fn sent_messages(&self, max: usize) -> Result<Vec<Message>, VaultError> {
        let Some(sent) = self.folders().await?.sent.clone() else {
            return Ok(Vec::new());
        };
        let mut guard = self.session().await?;
        let state = self.select(&mut guard, &sent).await?;
        // The last half year is plenty to learn from, and bounds the answer.
        let since = (chrono::Utc::now() - chrono::Duration::days(183)).format("%-d-%b-%Y");
        let uids = self.search(&mut guard, &format!("SINCE {since}")).await?;
        let newest = &uids[uids.len().saturating_sub(max)..];
        let mut messages = self
            .read(&mut guard, &sent, state.uid_validity, newest, true)
            .await?;
        messages.reverse();
        Ok(messages)
    }

    pub(super) async fn message(&self, id: &str) -> Result<Message, VaultError> {
        let id = MessageId::parse(id).ok_or(VaultError::Gone)?;
        self.folders().await?;
        let mut guard = self.session().await?;
        let state = match guard.as_mut().expect("opened").select(&id.folder).await {
            Ok(state) => state,
            // The folder is gone (renamed, deleted): so is the message.
            Err(ImapError::Refused(_)) => return Err(VaultError::Gone),
            Err(error) => return Err(self.failed(&mut guard, error)),
        };
        if state.uid_validity != id.uid_validity {
            return Err(VaultError::Gone);
        }
        self.read(&mut guard, &id.folder, id.uid_validity, &[id.uid], true)
            .await?
            .into_iter()
            .next()
            .ok_or(VaultError::Gone)
    }

    /// The conversation named `id`: every message in the inbox, Sent and
    /// Drafts that is it or refers to it, oldest first.
    pub(super) async fn thread(&self, id: &str) -> Result<Thread, VaultError> {
        let Some(root) = message_ids(id).into_iter().next() else {
            // A message without any Message-ID is a conversation of one.
            let message = self.message(id).await?;
            return Ok(Thread {
                id: id.to_owned(),
                messages: vec![message],
            });
        };
        let folders = self.folders().await?.clone();
        let quoted = imap::protocol::quoted(&root).ok_or(VaultError::Gone)?;
        let criteria = format!(
            "OR OR HEADER Message-ID {quoted} HEADER References {quoted} HEADER In-Reply-To {quoted}"
        );
        let mut messages = Vec::new();
        let mut guard = self.session().await?;
        for folder in [
            Some(INBOX.to_owned()),
            folders.sent.clone(),
            Some(folders.drafts.clone()),
        ]
        .into_iter()
        .flatten()
        {
            let state = self.select(&mut guard, &folder).await?;
            let uids = self.search(&mut guard, &criteria).await?;
            // A stranger can mail many "replies": the newest are enough.
            let uids = &uids[uids.len().saturating_sub(THREAD_LIMIT)..];
            messages.extend(
                self.read(&mut guard, &folder, state.uid_validity, uids, true)
                    .await?,
            );
        }
        if messages.is_empty() {
            return Err(VaultError::Gone);
        }
        messages.sort_by_key(|message| message.received_at_millis);
        Ok(Thread { id: root, messages })
    }

    /// Append `raw` to Drafts, flagged `\Draft`.
    pub(super) async fn create_draft(&self, raw: &[u8]) -> Result<CreatedDraft, VaultError> {
        let drafts = self.folders().await?.drafts.clone();
        let mut guard = self.session().await?;
        let appended = guard
            .as_mut()
            .expect("opened")
            .append(&drafts, &["\\Draft", "\\Seen"], raw)
            .await;
        let id = match appended {
            Ok(Some((validity, uid))) => MessageId::format(validity, uid, &drafts),
            Ok(None) => {
                // No UIDPLUS: find it by its Message-ID.
                drop(guard);
                let message_id = header_message_id(raw).ok_or_else(|| {
                    VaultError::Internal(anyhow::anyhow!("a draft without a Message-ID"))
                })?;
                self.find_in(&drafts, &message_id).await?.ok_or_else(|| {
                    VaultError::ServerUnavailable("the appended draft could not be found".into())
                })?
            }
            Err(error) => return Err(self.failed(&mut guard, error)),
        };
        Ok(CreatedDraft {
            message_id: Some(id.clone()),
            id,
        })
    }

    /// The id of the message of `folder` whose `Message-ID` is `message_id`.
    async fn find_in(&self, folder: &str, message_id: &str) -> Result<Option<String>, VaultError> {
        Ok(self
            .find_with_flags(folder, message_id)
            .await?
            .map(|found| found.id))
    }

    /// [`ImapMailbox::find_in`], with the message's conversation and flags.
    async fn find_with_flags(
        &self,
        folder: &str,
        message_id: &str,
    ) -> Result<Option<Found>, VaultError> {
        let Some(quoted) = imap::protocol::quoted(message_id) else {
            return Ok(None);
        };
        let mut guard = self.session().await?;
        let state = self.select(&mut guard, folder).await?;
        let uids = self
            .search(&mut guard, &format!("HEADER Message-ID {quoted}"))
            .await?;
        let Some(uid) = uids.into_iter().max() else {
            return Ok(None);
        };
        let Some(found) = self
            .fetch(&mut guard, &[uid], "BODY.PEEK[HEADER]")
            .await?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let id = MessageId::format(state.uid_validity, uid, folder);
        let thread_id = to_mail(
            id.clone(),
            found.body.as_deref().unwrap_or_default(),
            Placement::default(),
            0,
        )
        .thread_id;
        Ok(Some(Found {
            id,
            thread_id,
            flags: found.flags,
        }))
    }

    pub(super) async fn find_draft(&self, message_id: &str) -> Result<Option<String>, VaultError> {
        let drafts = self.folders().await?.drafts.clone();
        self.find_in(&drafts, message_id).await
    }

    /// The sent copy (or, when the server keeps no Sent folder, an inbox
    /// message) whose `Message-ID` is `message_id`. A copy still flagged
    /// [`UNCONFIRMED`] is a send whose outcome nobody knows:
    /// [`VaultError::SendUnconfirmed`].
    pub(super) async fn find_message(
        &self,
        message_id: &str,
    ) -> Result<Option<MessageRef>, VaultError> {
        let folders = self.folders().await?.clone();
        for folder in [folders.sent.clone(), Some(INBOX.to_owned())]
            .into_iter()
            .flatten()
        {
            if let Some(found) = self.find_with_flags(&folder, message_id).await? {
                if found
                    .flags
                    .iter()
                    .any(|flag| flag.eq_ignore_ascii_case(UNCONFIRMED))
                {
                    return Err(VaultError::SendUnconfirmed);
                }
                return Ok(Some(MessageRef {
                    id: found.id,
                    thread_id: found.thread_id,
                }));
            }
        }
        Ok(None)
    }

    /// Draft `id` as it is now; `None` when it is gone (sent, deleted).
    pub(super) async fn draft(&self, id: &str) -> Result<Option<Message>, VaultError> {
        match self.message(id).await {
            Ok(message) => Ok(Some(message)),
            Err(VaultError::Gone) => Ok(None),
            Err(error) => Err(error),
        }
    }

    pub(super) async fn delete_draft(&self, id: &str) -> Result<(), VaultError> {
        let Some(id) = MessageId::parse(id) else {
            return Ok(());
        };
        let mut guard = self.session().await?;
        let state = match guard.as_mut().expect("opened").select(&id.folder).await {
            Ok(state) => state,
            Err(ImapError::Refused(_)) => return Ok(()),
            Err(error) => return Err(self.failed(&mut guard, error)),
        };
        if state.uid_validity != id.uid_validity {
            return Ok(());
        }
        match guard.as_mut().expect("opened").delete(id.uid).await {
            Ok(()) => Ok(()),
            Err(error) => Err(self.failed(&mut guard, error)),
        }
    }

    /// Send `raw` by SMTP submission, with its copy in Sent.
    ///
    /// SMTP cannot say whether a message was taken when the connection
    /// breaks after it was handed over, so the copy goes into Sent first,
    /// flagged [`UNCONFIRMED`], and loses the flag when the server confirms.
    /// A retry after a crash finds the copy ([`ImapMailbox::find_message`]):
    /// confirmed, the send is done; still flagged, nobody knows, and it is
    /// not sent again ([`VaultError::SendUnconfirmed`]: a person checks).
    /// The SMTP login comes before the copy, so a refused login or a server
    /// that is down leaves nothing behind.
    pub(super) async fn send(&self, raw: &[u8]) -> Result<MessageRef, VaultError> {
        let message_id = header_message_id(raw).ok_or_else(|| {
            VaultError::Internal(anyhow::anyhow!("a message to send has no Message-ID"))
        })?;
        let submission =
            Submission::connect(&self.account, self.vault.mail_network(), imap::SEND_TIMEOUT)
                .await
                .map_err(|error| self.submission_failed(error))?;
        if let Err(error) = submission.check().await {
            return Err(self.submission_failed_async(error).await);
        }
        let folders = self.folders().await?.clone();
        let mut copy = match &folders.sent {
            Some(sent) => self.append_unconfirmed(sent, raw, &message_id).await?,
            None => None,
        };
        // A server that does not keep keywords would make an unsent copy
        // look sent to a retry: then the copy is made after the send
        // instead (a crash between the two may send again, never lose it).
        if let (Some(sent), Some(id)) = (&folders.sent, &copy)
            && !self.keeps_flag(sent, &message_id).await?
        {
            let _ = self.delete_draft(id).await;
            copy = None;
        }
        let copy_after = folders.sent.is_some() && copy.is_none();
        match submission.send(&self.integration.email, raw).await {
            Ok(()) => {}
            Err(SubmissionError::Unconfirmed) => {
                tracing::warn!(integration = %self.integration.id, message_id = %message_id, "the SMTP connection broke after the message was handed over; not sending again");
                return Err(VaultError::SendUnconfirmed);
            }
            Err(error) => {
                // Refused or deferred before it was taken: the copy goes.
                if let Some(copy) = &copy {
                    let _ = self.delete_draft(copy).await;
                }
                return Err(self.submission_failed_async(error).await);
            }
        }
        if let Some(copy) = &copy {
            self.confirm(copy).await;
        } else if copy_after && let Some(sent) = &folders.sent {
            copy = self.append_sent(sent, raw).await;
        }
        let thread_id = to_mail(String::new(), raw, Placement::default(), 0).thread_id;
        Ok(MessageRef {
            id: copy.unwrap_or(message_id),
            thread_id,
        })
    }

    /// Append `raw` (whose Message-ID is `message_id`) to `sent`, seen and
    /// flagged [`UNCONFIRMED`]; its id (found by `message_id` when the
    /// server does not say, without UIDPLUS).
    async fn append_unconfirmed(
        &self,
        sent: &str,
        raw: &[u8],
        message_id: &str,
    ) -> Result<Option<String>, VaultError> {
        let mut guard = self.session().await?;
        let appended = guard
            .as_mut()
            .expect("opened")
            .append(sent, &["\\Seen", UNCONFIRMED], raw)
            .await;
        match appended {
            Ok(Some((validity, uid))) => Ok(Some(MessageId::format(validity, uid, sent))),
            Ok(None) => {
                drop(guard);
                self.find_in(sent, message_id).await
            }
            Err(error) => Err(self.failed(&mut guard, error)),
        }
    }

    /// Whether the copy of `message_id` in `sent` carries [`UNCONFIRMED`]
    /// (the server kept the keyword).
    async fn keeps_flag(&self, sent: &str, message_id: &str) -> Result<bool, VaultError> {
        Ok(self
            .find_with_flags(sent, message_id)
            .await?
            .is_some_and(|found| {
                found
                    .flags
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case(UNCONFIRMED))
            }))
    }

    /// Append the sent `raw` to `sent`, seen (best effort: the message is
    /// sent; only its copy would be missing).
    async fn append_sent(&self, sent: &str, raw: &[u8]) -> Option<String> {
        let Ok(mut guard) = self.session().await else {
            return None;
        };
        match guard.as_mut()?.append(sent, &["\\Seen"], raw).await {
            Ok(Some((validity, uid))) => Some(MessageId::format(validity, uid, sent)),
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(integration = %self.integration.id, error = %error, "the sent message could not be copied to Sent");
                guard.take();
                None
            }
        }
    }

    /// The server took the message: its copy loses [`UNCONFIRMED`]. Best
    /// effort: a copy left flagged only makes a later retry cautious.
    async fn confirm(&self, copy: &str) {
        let Some(id) = MessageId::parse(copy) else {
            return;
        };
        let Ok(mut guard) = self.session().await else {
            return;
        };
        let current = matches!(
            self.select(&mut guard, &id.folder).await,
            Ok(state) if state.uid_validity == id.uid_validity
        );
        if !current {
            return;
        }
        let Some(session) = guard.as_mut() else {
            return;
        };
        if let Err(error) = session.change_flags(id.uid, false, &[UNCONFIRMED]).await {
            tracing::warn!(integration = %self.integration.id, error = %error, "the sent copy could not be marked confirmed");
            guard.take();
        }
    }

    fn submission_failed(&self, error: SubmissionError) -> VaultError {
        match error {
            SubmissionError::Refused(code) => {
                VaultError::Rejected(format!("The SMTP server refused the message ({code})."))
            }
            SubmissionError::Unconfirmed => VaultError::SendUnconfirmed,
            other => VaultError::ServerUnavailable(format!("{}: {other}", self.integration.email)),
        }
    }

    async fn submission_failed_async(&self, error: SubmissionError) -> VaultError {
        match error {
            SubmissionError::AuthFailed => self.vault.password_refused(&self.integration).await,
            other => self.submission_failed(other),
        }
    }
}

/// `uids` (ascending) as an IMAP set: runs as ranges (`3:7,9`), so the
/// command stays short however many there are.
fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut run: Option<(u32, u32)> = None;
    for uid in sorted {
        run = match run {
            Some((first, last)) if uid == last + 1 => Some((first, uid)),
            Some((first, last)) => {
                parts.push(range(first, last));
                Some((uid, uid))
            }
            None => Some((uid, uid)),
        };
    }
    if let Some((first, last)) = run {
        parts.push(range(first, last));
    }
    parts.join(",")
}

fn range(first: u32, last: u32) -> String {
    if first == last {
        first.to_string()
    } else {
        format!("{first}:{last}")
    }
}

fn reference(message: Message) -> MessageRef {
    MessageRef {
        id: message.id,
        thread_id: message.thread_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_and_ids_round_trip() {
        for (validity, next) in [(1, 1), (u32::MAX, u32::MAX), (1_700_000_000, 42)] {
            assert_eq!(unpack_cursor(pack_cursor(validity, next)), (validity, next));
        }
        let id = MessageId::format(7, 12, "INBOX/Sub:folder");
        assert_eq!(
            MessageId::parse(&id),
            Some(MessageId {
                uid_validity: 7,
                uid: 12,
                folder: "INBOX/Sub:folder".into()
            })
        );
        assert_eq!(MessageId::parse("<abc@example.com>"), None);
    }

    #[test]
    fn uid_sets_are_runs() {
        assert_eq!(uid_set(&[9, 3, 4, 5, 7, 4]), "3:5,7,9");
        assert_eq!(uid_set(&[1]), "1");
        let many: Vec<u32> = (1..=10_000).collect();
        assert_eq!(uid_set(&many), "1:10000");
    }
}
