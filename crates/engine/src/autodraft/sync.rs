//! Finding new mail: the poller, history sync and the catch-up when the
//! history cursor is gone.

use super::*;

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

    /// Poll until `shutdown` turns true.
    pub async fn run_poller(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let tick = self
            .settings
            .poll_interval
            .clamp(Duration::from_millis(200), Duration::from_secs(1));
        loop {
            if *shutdown.borrow() {
                return;
            }
            if let Err(error) = self.poll_tick(store::now()).await {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "the auto-draft poller cannot reach the database; retrying"
                );
            }
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// One sync of a mailbox (the `autodraft.sync` job).
    pub async fn sync(&self, workspace: WorkspaceId, id: IntegrationId) -> Result<(), JobError> {
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
            let Some(cursor) = mailbox.history_id.filter(|_| mailbox.enabled) else {
                return Ok(());
            };
            let integration = match self.store.integration(workspace, id).await {
                Ok(integration) => integration,
                Err(StoreError::NotFound) => return Ok(()),
                Err(error) => return Err(job_transient(error)),
            };
            if integration.status != IntegrationStatus::Connected {
                // Paused: the integration's status and last error say why,
                // and its owner was told when it broke.
                return Ok(());
            }
            let read = match self.read_history(workspace, id, cursor).await {
                Err(VaultError::GoneAtGoogle) => {
                    self.catch_up(workspace, &integration, &mailbox, cursor)
                        .await
                }
                other => other,
            };
            let (found, to) = match read {
                Ok(read) => read,
                Err(error) => return self.sync_failed(workspace, id, error).await,
            };
            let recorded = self
                .store
                .record_autodraft_sync(workspace, id, cursor, to, &found, |message| {
                    self.draft_job(workspace, message)
                })
                .await
                .map_err(job_transient)?;
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

    pub(super) async fn read_history(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        cursor: i64,
    ) -> Result<(Vec<FoundMessage>, i64), VaultError> {
        let gmail = self.vault.gmail().clone();
        let start = u64::try_from(cursor).unwrap_or(0);
        let mut found: Vec<FoundMessage> = Vec::new();
        let mut page_token: Option<String> = None;
        let mut latest = cursor;
        loop {
            let page = self
                .vault
                .with_gmail(workspace, id, Capability::ReadMail, |token| {
                    let (gmail, page_token) = (gmail.clone(), page_token.clone());
                    async move {
                        gmail
                            .inbox_history(&token, start, page_token.as_deref())
                            .await
                    }
                })
                .await?;
            for record in page.history {
                for added in record.messages_added {
                    if found.iter().all(|m| m.gmail_message_id != added.message.id) {
                        found.push(FoundMessage {
                            thread_id: added
                                .message
                                .thread_id
                                .clone()
                                .unwrap_or_else(|| added.message.id.clone()),
                            gmail_message_id: added.message.id,
                        });
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
        Ok((found, latest))
    }

    /// The cursor expired: list the inbox since the last sync instead, and
    /// say so in the mailbox's events.
    pub(super) async fn catch_up(
        &self,
        workspace: WorkspaceId,
        integration: &Integration,
        mailbox: &AutoDraftMailbox,
        cursor: i64,
    ) -> Result<(Vec<FoundMessage>, i64), VaultError> {
        let id = integration.id;
        let gmail = self.vault.gmail().clone();
        let profile = self
            .vault
            .with_gmail(workspace, id, Capability::ReadMail, |token| {
                let gmail = gmail.clone();
                async move { gmail.profile(&token).await }
            })
            .await?;
        let now_history = profile
            .history_id
            .as_deref()
            .and_then(|h| h.parse::<i64>().ok())
            .unwrap_or(cursor)
            .max(cursor);
        let enabled_at = mailbox.enabled_at.unwrap_or_else(store::now);
        let since = mailbox
            .last_synced_at
            .map(|at| at - CATCH_UP_MARGIN)
            .unwrap_or(enabled_at)
            .max(enabled_at);
        let query = format!("after:{}", since.timestamp());
        let mut found: Vec<FoundMessage> = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let page = self
                .vault
                .with_gmail(workspace, id, Capability::ReadMail, |token| {
                    let (gmail, page_token, query) =
                        (gmail.clone(), page_token.clone(), query.clone());
                    async move {
                        gmail
                            .inbox_messages(&token, &query, 500, page_token.as_deref())
                            .await
                    }
                })
                .await?;
            found.extend(page.messages.into_iter().map(|m| FoundMessage {
                thread_id: m.thread_id.clone().unwrap_or_else(|| m.id.clone()),
                gmail_message_id: m.id,
            }));
            match page.next_page_token {
                Some(token) if found.len() < CATCH_UP_LIMIT => page_token = Some(token),
                _ => break,
            }
        }
        // Oldest first, like history order.
        found.reverse();
        let message = format!(
            "Gmail no longer had the mailbox history from position {cursor}; Mailwright looked at the {} inbox message(s) since {} instead.",
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
        Ok((found, now_history))
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
