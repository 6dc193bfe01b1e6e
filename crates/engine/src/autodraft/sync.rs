//! Finding new mail: the poller, history sync and the catch-up when the
//! history cursor is gone.

use super::*;
use domain::mail::MailboxCursor;

impl AutoDraft {
    /// Queue a sync for every mailbox whose poll is due; how many.
    pub async fn poll_tick(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let next = now + chrono_duration(self.settings.poll_interval);
        let mut queued = 0;
        loop {
            let due = self.store.due_autodraft_polls(now, 500).await?;
            let batch = due.len();
            for (workspace, integration, due_at) in due {
                if self
                    .store
                    .claim_autodraft_poll(
                        workspace,
                        integration,
                        due_at,
                        next,
                        &Self::sync_job(workspace, integration),
                    )
                    .await?
                {
                    queued += 1;
                }
            }
            if batch < 500 {
                break;
            }
        }
        metrics::gauge!(ENABLED_MAILBOXES)
            .set(self.store.enabled_autodraft_mailboxes().await? as f64);
        Ok(queued)
    }

    /// Poll (and, every [`WATCH_TICK`], renew watches) until `shutdown`
    /// turns true.
    pub async fn run_poller(self: Arc<Self>, shutdown: tokio::sync::watch::Receiver<bool>) {
        let tick = self
            .settings
            .poll_interval
            .clamp(Duration::from_millis(200), Duration::from_secs(1));
        // Renewals are daily: looking for due ones once a minute is enough,
        // and spares a scan of every mailbox each second.
        let last_watch_tick = std::sync::Mutex::new(None::<std::time::Instant>);
        crate::supervisor::every(tick, shutdown, "the auto-draft poller", || async {
            let now = store::now();
            let polls = self.poll_tick(now).await?;
            let watch_due = {
                let mut last = last_watch_tick
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let due = last.is_none_or(|at| at.elapsed() >= WATCH_TICK);
                if due {
                    *last = Some(std::time::Instant::now());
                }
                due
            };
            let renewals = if watch_due {
                self.watch_tick(now).await?
            } else {
                0
            };
            Ok(polls + renewals)
        })
        .await
    }

    /// One sync of a mailbox (the `autodraft.sync` job).
    pub async fn sync(&self, workspace: WorkspaceId, id: IntegrationId) -> Result<(), JobError> {
        // Opened once, on the first round that needs it.
        let mut opened: Option<Mailbox> = None;
        for _ in 0..SYNC_ROUNDS {
            let started = store::now();
            let Some(mailbox) = self
                .store
                .autodraft_mailbox(workspace, id)
                .await
                .map_err(job_transient)?
            else {
                return Ok(());
            };
            let Some(cursor) = mailbox.cursor().filter(|_| mailbox.synced()) else {
                return Ok(());
            };
            // Read every round, before anything reaches Google: a paused
            // mailbox (its integration's status and last error say why, and
            // its owner was told when it broke) costs no call, not even a
            // token refresh.
            let Some(integration) = self
                .existing_integration(workspace, id)
                .await
                .map_err(job_transient)?
            else {
                return Ok(());
            };
            if integration.status != IntegrationStatus::Connected {
                return Ok(());
            }
            let inbox = match opened {
                Some(ref inbox) => inbox,
                None => match Mailbox::open(&self.vault, workspace, id).await {
                    Ok(inbox) => opened.insert(inbox),
                    // It broke or went away just now.
                    Err(
                        VaultError::NotFound | VaultError::NeedsReauth | VaultError::Disconnected,
                    ) => return Ok(()),
                    Err(error) => return self.sync_failed(workspace, id, error).await,
                },
            };
            let read = match inbox.changes_since(&cursor).await {
                Ok(Changes::Found { messages, cursor }) => {
                    Ok((found_messages(messages), cursor, false))
                }
                Ok(Changes::CursorGone) => self
                    .catch_up(inbox, &mailbox, &cursor)
                    .await
                    .map(|(found, to)| (found, to, true)),
                Err(error) => Err(error),
            };
            let (found, to, cursor_reset) = match read {
                Ok(read) => read,
                Err(error) => return self.sync_failed(workspace, id, error).await,
            };
            let recorded = self
                .store
                .record_autodraft_sync(
                    workspace,
                    id,
                    (cursor.position, &to, cursor_reset),
                    &found,
                    |message| self.draft_job(workspace, message),
                    |message| crate::workflows::new_mail_job(workspace, id, message),
                )
                .await
                .map_err(job_transient)?;
            self.outcome_check_if_due(workspace, id).await;
            match recorded {
                Some(new) if new > 0 => {
                    tracing::debug!(integration = %id, new, "auto-draft sync found messages")
                }
                Some(_) => {}
                None => {
                    tracing::debug!(integration = %id, "the cursor moved meanwhile; nothing recorded")
                }
            }
            if !self
                .store
                .autodraft_sync_requested_since(workspace, id, started)
                .await
                .map_err(job_transient)?
            {
                return Ok(());
            }
        }
        Ok(())
    }

    /// The cursor expired: list the inbox since the last sync instead, and
    /// say so in the mailbox's events.
    pub(super) async fn catch_up(
        &self,
        inbox: &Mailbox,
        mailbox: &AutoDraftMailbox,
        cursor: &MailboxCursor,
    ) -> Result<(Vec<FoundMessage>, MailboxCursor), VaultError> {
        let (workspace, id) = (inbox.integration().workspace, inbox.integration().id);
        let now_cursor = inbox.cursor_after_catch_up(cursor).await?;
        // Never before auto-draft was switched on (for its drafts); a
        // workflow-only mailbox's sync started at its `last_synced_at`.
        let floor = mailbox.enabled.then_some(mailbox.enabled_at).flatten();
        let since = match (mailbox.last_synced_at.map(|at| at - CATCH_UP_MARGIN), floor) {
            (Some(last), Some(floor)) => last.max(floor),
            (Some(last), None) => last,
            (None, Some(floor)) => floor,
            (None, None) => store::now(),
        };
        let found = found_messages(inbox.inbox_since(since).await?);
        let message = format!(
            "The mailbox no longer had its history from position {}; Mailwright looked at the {} inbox message(s) since {} instead.",
            cursor.position,
            found.len(),
            since.format("%Y-%m-%d %H:%M UTC")
        );
        tracing::warn!(integration = %id, event = "autodraft_catch_up", found = found.len(), "{message}");
        metrics::counter!(CATCH_UPS).increment(1);
        if let Err(error) = self
            .store
            .record_autodraft_event(workspace, id, "catch_up", &message)
            .await
        {
            tracing::error!(integration = %id, error = format!("{error:#}"), "cannot record the catch-up event");
        }
        Ok((found, now_cursor))
    }

    /// A sync could not read the mailbox: say why on the mailbox. Connection
    /// problems pause it (the integration's status says why and its owner
    /// was told), so the job ends; outages retry.
    pub(super) async fn sync_failed(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        error: VaultError,
    ) -> Result<(), JobError> {
        let (code, message, outcome) = match vault_to_pipeline(error) {
            PipelineError::Connection { code, message } => (code, message.clone(), Ok(())),
            PipelineError::Transient {
                message,
                retry_after,
            } => (
                "provider_unavailable",
                message.clone(),
                Err(JobError::Transient {
                    message,
                    retry_after,
                }),
            ),
            PipelineError::Permanent { code, message } => {
                (code, message.clone(), Err(JobError::Permanent(message)))
            }
        };
        if let Err(error) = self
            .store
            .record_autodraft_failure(workspace, id, code, &message)
            .await
        {
            tracing::error!(integration = %id, error = format!("{error:#}"), "cannot record the sync failure");
        }
        outcome
    }
}

/// Messages a sync found, as the store records them.
fn found_messages(messages: Vec<MessageRef>) -> Vec<FoundMessage> {
    messages
        .into_iter()
        .map(|message| FoundMessage {
            gmail_message_id: message.id,
            thread_id: message.thread_id,
        })
        .collect()
}
