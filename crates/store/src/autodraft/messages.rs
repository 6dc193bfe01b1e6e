//! Auto-draft's messages: each found message through to its draft (or
//! why none), the drafts made, the numbers and the events.

use super::*;

impl Store {
    /// A message row with its mailbox's switch: whether auto-draft is still on.
    pub async fn autodraft_message(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
    ) -> Result<(InboundMessage, bool), StoreError> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS}, (SELECT enabled FROM autodraft_mailboxes m \
                 WHERE m.integration_id = autodraft_messages.integration_id) AS mailbox_enabled \
             FROM autodraft_messages WHERE workspace_id = $1 AND id = $2"
        );
        let found: Option<(MessageRow, Option<bool>)> = in_workspace!(self, workspace, conn => {
            match sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(workspace.as_uuid())
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
            {
                Some(row) => Some((
                    sqlx::FromRow::from_row(&row)?,
                    sqlx::Row::try_get(&row, "mailbox_enabled")?,
                )),
                None => None,
            }
        });
        let (message, enabled) = found.ok_or(StoreError::NotFound)?;
        Ok((message.try_into()?, enabled.unwrap_or(false)))
    }

    /// The message row for a Gmail message id, if a sync found it.
    pub async fn autodraft_message_by_gmail_id(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        gmail_message_id: &str,
    ) -> Result<Option<InboundMessage>, StoreError> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM autodraft_messages \
             WHERE workspace_id = $1 AND integration_id = $2 AND gmail_message_id = $3"
        );
        let row: Option<MessageRow> = in_workspace!(self, workspace, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(workspace.as_uuid())
                .bind(integration.as_uuid())
                .bind(gmail_message_id)
                .fetch_optional(&mut *conn)
                .await?
        });
        row.map(InboundMessage::try_from).transpose()
    }

    /// About to call `drafts.create`: from here on a retry must look for the
    /// draft before creating one.
    pub async fn mark_autodraft_creating(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
        generated: &Generated,
    ) -> Result<(), StoreError> {
        in_workspace!(self, workspace, conn => {
            sqlx::query(
                "UPDATE autodraft_messages SET status = 'creating', draft_type = $1, draft_type_label = $2, generator = $3 \
                 WHERE workspace_id = $4 AND id = $5",
            )
            .bind(&generated.draft_type)
            .bind(&generated.draft_type_label)
            .bind(&generated.generator)
            .bind(workspace.as_uuid())
            .bind(id)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// The draft exists: record its metadata and finish the message, in one
    /// transaction. A second record for the same source is ignored.
    /// Record a created draft, and end the message row `message_id` (when a
    /// sync found the message) as drafted.
    pub async fn record_autodraft_draft(
        &self,
        message_id: Option<Uuid>,
        draft: &DraftRecord,
    ) -> Result<(), StoreError> {
        in_workspace_tx!(self, draft.workspace, conn => {
            sqlx::query(
                "INSERT INTO draft_metadata (id, workspace_id, integration_id, source_message_id, \
                     source_rfc822_message_id, thread_id, provider_draft_id, draft_type, draft_type_label, generator, \
                     created_at, source_subject, source_from, reply_excerpt, reply_text, draft_message_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
                 ON CONFLICT (integration_id, source_message_id) DO NOTHING",
            )
            .bind(draft.id)
            .bind(draft.workspace.as_uuid())
            .bind(draft.integration_id.as_uuid())
            .bind(&draft.source_message_id)
            .bind(&draft.source_rfc822_message_id)
            .bind(&draft.thread_id)
            .bind(&draft.provider_draft_id)
            .bind(&draft.draft_type)
            .bind(&draft.draft_type_label)
            .bind(&draft.generator)
            .bind(draft.created_at)
            .bind(&draft.summary.source_subject)
            .bind(&draft.summary.source_from)
            .bind(&draft.summary.reply_excerpt)
            .bind(&draft.reply_text)
            .bind(&draft.draft_message_id)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE autodraft_messages SET status = 'drafted', reason = NULL, detail = NULL, next_attempt_at = NULL, finished_at = $1, \
                     draft_type = $2, draft_type_label = $3, generator = $4 \
                 WHERE workspace_id = $5 AND id = $6",
            )
            .bind(draft.created_at)
            .bind(&draft.draft_type)
            .bind(&draft.draft_type_label)
            .bind(&draft.generator)
            .bind(draft.workspace.as_uuid())
            .bind(message_id.unwrap_or_else(Uuid::nil))
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// End a message as skipped or failed, with its reason (a stable code)
    /// and a sentence for people.
    pub async fn finish_autodraft_message(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
        status: MessageStatus,
        reason: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        debug_assert!(matches!(
            status,
            MessageStatus::Skipped | MessageStatus::Failed
        ));
        in_workspace!(self, workspace, conn => {
            sqlx::query(
                "UPDATE autodraft_messages SET status = $1, reason = $2, detail = $3, finished_at = $4, next_attempt_at = NULL \
                 WHERE workspace_id = $5 AND id = $6",
            )
            .bind(status.as_str())
            .bind(reason)
            .bind(detail)
            .bind(now())
            .bind(workspace.as_uuid())
            .bind(id)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// A message whose attempt failed for a reason that may pass: what went
    /// wrong (`code`, `detail`) and when it is tried again. A message that
    /// has ended meanwhile is left as it is.
    pub async fn mark_autodraft_message_retrying(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
        code: &str,
        detail: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        in_workspace!(self, workspace, conn => {
            sqlx::query(
                "UPDATE autodraft_messages SET reason = $1, detail = $2, next_attempt_at = $3 \
                 WHERE workspace_id = $4 AND id = $5 AND status IN ('pending', 'creating')",
            )
            .bind(code)
            .bind(detail)
            .bind(next_attempt_at)
            .bind(workspace.as_uuid())
            .bind(id)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    pub async fn autodraft_stats(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
    ) -> Result<AutoDraftStats, StoreError> {
        let (outcomes, drafts, last_failed, next_retry): StatsRows = in_workspace!(self, workspace, conn => {
            let outcomes = sqlx::query_as(
                "SELECT status, reason, COUNT(*) FROM autodraft_messages \
                 WHERE workspace_id = $1 AND integration_id = $2 AND status <> 'drafted' \
                 GROUP BY status, reason",
            )
            .bind(workspace.as_uuid())
            .bind(integration.as_uuid())
            .fetch_all(&mut *conn)
            .await?;
            let drafts = sqlx::query_as(
                "SELECT draft_type, COUNT(*), MAX(created_at) FROM draft_metadata \
                 WHERE workspace_id = $1 AND integration_id = $2 GROUP BY draft_type",
            )
            .bind(workspace.as_uuid())
            .bind(integration.as_uuid())
            .fetch_all(&mut *conn)
            .await?;
            let last_failed = sqlx::query_as(
                "SELECT reason, detail, finished_at FROM autodraft_messages \
                 WHERE workspace_id = $1 AND integration_id = $2 AND status = 'failed' AND finished_at IS NOT NULL \
                 ORDER BY finished_at DESC LIMIT 1",
            )
            .bind(workspace.as_uuid())
            .bind(integration.as_uuid())
            .fetch_optional(&mut *conn)
            .await?;
            let next_retry = sqlx::query_as(
                "SELECT next_attempt_at, reason, detail FROM autodraft_messages \
                 WHERE workspace_id = $1 AND integration_id = $2 AND status IN ('pending', 'creating') \
                   AND next_attempt_at IS NOT NULL \
                 ORDER BY next_attempt_at LIMIT 1",
            )
            .bind(workspace.as_uuid())
            .bind(integration.as_uuid())
            .fetch_optional(&mut *conn)
            .await?;
            (outcomes, drafts, last_failed, next_retry)
        });
        let mut stats = AutoDraftStats::default();
        for (status, reason, count) in outcomes {
            // An unfinished message with a reason failed its last attempt.
            if reason.is_some() && matches!(status.as_str(), "pending" | "creating") {
                stats.retrying += count;
            }
            let reason = reason.unwrap_or_else(|| "unknown".into());
            match status.as_str() {
                "skipped" => *stats.skipped_by_reason.entry(reason).or_default() += count,
                "failed" => *stats.failures_by_reason.entry(reason).or_default() += count,
                _ => stats.pending += count,
            }
        }
        stats.next_retry = next_retry.map(|(at, code, message)| NextRetry {
            at,
            code: code.unwrap_or_else(|| "unknown".into()),
            message: message.unwrap_or_default(),
        });
        for (draft_type, count, newest) in drafts {
            stats.drafts_created += count;
            stats.drafts_by_type.insert(draft_type, count);
            stats.last_success_at = stats.last_success_at.max(Some(newest));
        }
        stats.last_failed_message = last_failed.map(|(code, message, at)| LastError {
            code: code.unwrap_or_else(|| "unknown".into()),
            message: message.unwrap_or_default(),
            at,
        });
        Ok(stats)
    }

    /// Newest drafts first.
    pub async fn autodraft_drafts(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        limit: i64,
    ) -> Result<Vec<DraftRecord>, StoreError> {
        let sql = format!(
            "SELECT {DRAFT_COLUMNS} FROM draft_metadata WHERE workspace_id = $1 AND integration_id = $2 \
             ORDER BY created_at DESC LIMIT $3"
        );
        let rows: Vec<DraftRow> = in_workspace!(self, workspace, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(workspace.as_uuid())
                .bind(integration.as_uuid())
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?
        });
        Ok(rows.into_iter().map(DraftRecord::from).collect())
    }

    /// The mailbox's drafts still `pending` and not looked at since
    /// `checked_before`, oldest look first, at most `limit`.
    pub async fn drafts_to_check(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        checked_before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DraftRecord>, StoreError> {
        let sql = format!(
            "SELECT {DRAFT_COLUMNS} FROM draft_metadata WHERE workspace_id = $1 AND integration_id = $2 \
                 AND outcome = 'pending' AND (outcome_checked_at IS NULL OR outcome_checked_at < $3) \
             ORDER BY outcome_checked_at IS NOT NULL, outcome_checked_at, created_at LIMIT $4"
        );
        let rows: Vec<DraftRow> = in_workspace!(self, workspace, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(workspace.as_uuid())
                .bind(integration.as_uuid())
                .bind(checked_before)
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?
        });
        Ok(rows.into_iter().map(DraftRecord::from).collect())
    }

    /// A pending draft was looked at: its `outcome` now (`pending` keeps it
    /// waiting), with `changed_percent` for an edited send. `false` when it
    /// was no longer pending (another check got there first).
    pub async fn record_draft_outcome(
        &self,
        workspace: WorkspaceId,
        draft: Uuid,
        outcome: &str,
        changed_percent: Option<i32>,
    ) -> Result<bool, StoreError> {
        let at = now();
        let updated = in_workspace!(self, workspace, conn => {
            sqlx::query(
                "UPDATE draft_metadata SET outcome = $1, changed_percent = $2, outcome_checked_at = $3, \
                     outcome_at = CASE WHEN $1 = 'pending' THEN NULL ELSE $3 END \
                 WHERE workspace_id = $4 AND id = $5 AND outcome = 'pending'",
            )
            .bind(outcome)
            .bind(changed_percent)
            .bind(at)
            .bind(workspace.as_uuid())
            .bind(draft)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        Ok(updated == 1)
    }

    /// A clean-up that could not delete the draft: it is pending again.
    pub async fn reopen_cleaned_draft(
        &self,
        workspace: WorkspaceId,
        draft: Uuid,
    ) -> Result<(), StoreError> {
        in_workspace!(self, workspace, conn => {
            sqlx::query(
                "UPDATE draft_metadata SET outcome = 'pending', outcome_at = NULL \
                 WHERE workspace_id = $1 AND id = $2 AND outcome = 'cleaned_up'",
            )
            .bind(workspace.as_uuid())
            .bind(draft)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// Drafts by type, generator and outcome: `(draft_type, generator,
    /// outcome, count)`.
    pub async fn autodraft_outcome_counts(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
    ) -> Result<Vec<(String, String, String, i64)>, StoreError> {
        Ok(in_workspace!(self, workspace, conn => {
            sqlx::query_as(
                "SELECT draft_type, generator, outcome, COUNT(*) FROM draft_metadata \
                 WHERE workspace_id = $1 AND integration_id = $2 GROUP BY draft_type, generator, outcome \
                 ORDER BY draft_type, generator, outcome",
            )
            .bind(workspace.as_uuid())
            .bind(integration.as_uuid())
            .fetch_all(&mut *conn)
            .await?
        }))
    }

    /// Take the mailbox's outcome check if it is due (last one before
    /// `due_before`): whether this caller did (compare-and-set). A mailbox
    /// never checked starts its clock now: its drafts are only minutes old.
    pub async fn claim_outcome_check(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        due_before: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let updated = in_workspace!(self, workspace, conn => {
            let started = sqlx::query(
                "UPDATE autodraft_mailboxes SET outcomes_checked_at = $1 \
                 WHERE workspace_id = $2 AND integration_id = $3 AND outcomes_checked_at IS NULL",
            )
            .bind(now())
            .bind(workspace.as_uuid())
            .bind(integration.as_uuid())
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if started == 1 {
                0
            } else {
                sqlx::query(
                    "UPDATE autodraft_mailboxes SET outcomes_checked_at = $1 \
                     WHERE workspace_id = $2 AND integration_id = $3 \
                         AND (outcomes_checked_at IS NULL OR outcomes_checked_at < $4)",
                )
                .bind(now())
                .bind(workspace.as_uuid())
                .bind(integration.as_uuid())
                .bind(due_before)
                .execute(&mut *conn)
                .await?
                .rows_affected()
            }
        });
        Ok(updated == 1)
    }

    /// Keep the owner's writing style (`None`: forget it, to learn it
    /// again), learnt at `learned_at` (`None`: set by hand).
    pub async fn set_autodraft_style(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        style: Option<&domain::drafting::style::StyleProfile>,
        learned_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let style = style
            .map(serde_json::to_string)
            .transpose()
            .map_err(|error| StoreError::Other(error.to_string().into()))?;
        let at = now();
        in_workspace!(self, workspace, conn => {
            sqlx::query(
                "INSERT INTO autodraft_mailboxes (integration_id, workspace_id, enabled, updated_at, style, style_learned_at) \
                 VALUES ($1, $2, FALSE, $3, $4, $5) \
                 ON CONFLICT (integration_id) DO UPDATE SET style = $4, style_learned_at = $5, updated_at = $3",
            )
            .bind(integration.as_uuid())
            .bind(workspace.as_uuid())
            .bind(at)
            .bind(style)
            .bind(learned_at)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// Switch the mailbox's clean-up on (after `days` of quiet) or off.
    pub async fn set_autodraft_cleanup(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        days: Option<i32>,
    ) -> Result<(), StoreError> {
        let at = now();
        in_workspace!(self, workspace, conn => {
            sqlx::query(
                "INSERT INTO autodraft_mailboxes (integration_id, workspace_id, enabled, updated_at, cleanup_after_days) \
                 VALUES ($1, $2, FALSE, $3, $4) \
                 ON CONFLICT (integration_id) DO UPDATE SET cleanup_after_days = $4, updated_at = $3",
            )
            .bind(integration.as_uuid())
            .bind(workspace.as_uuid())
            .bind(at)
            .bind(days)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// The draft recorded for this source message, if any.
    pub async fn autodraft_draft_for_source(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        source_message_id: &str,
    ) -> Result<Option<DraftRecord>, StoreError> {
        let sql = format!(
            "SELECT {DRAFT_COLUMNS} FROM draft_metadata \
             WHERE workspace_id = $1 AND integration_id = $2 AND source_message_id = $3"
        );
        let row: Option<DraftRow> = in_workspace!(self, workspace, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(workspace.as_uuid())
                .bind(integration.as_uuid())
                .bind(source_message_id)
                .fetch_optional(&mut *conn)
                .await?
        });
        Ok(row.map(DraftRecord::from))
    }

    /// Messages that ended since `since`: (all, failed). For the failure-rate alert.
    pub async fn autodraft_outcomes_since(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        since: DateTime<Utc>,
    ) -> Result<(i64, i64), StoreError> {
        let counts: (i64, Option<i64>) = in_workspace!(self, workspace, conn => {
            sqlx::query_as(
                "SELECT COUNT(*), SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) FROM autodraft_messages \
                 WHERE workspace_id = $1 AND integration_id = $2 AND finished_at >= $3 AND status IN ('drafted', 'failed')",
            )
            .bind(workspace.as_uuid())
            .bind(integration.as_uuid())
            .bind(since)
            .fetch_one(&mut *conn)
            .await?
        });
        Ok((counts.0, counts.1.unwrap_or(0)))
    }

    /// Start (`true`) or end the failure-rate alert. `Some(at)` only for the
    /// caller that made the change, so one notice goes out per episode.
    pub async fn set_autodraft_alert(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        active: bool,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at = now();
        let sql = if active {
            "UPDATE autodraft_mailboxes SET alert_active_since = $1 \
             WHERE workspace_id = $2 AND integration_id = $3 AND alert_active_since IS NULL"
        } else {
            "UPDATE autodraft_mailboxes SET alert_active_since = NULL \
             WHERE workspace_id = $2 AND integration_id = $3 AND alert_active_since IS NOT NULL AND $1 >= alert_active_since"
        };
        let changed = in_workspace!(self, workspace, conn => {
            sqlx::query(sql)
                .bind(at)
                .bind(workspace.as_uuid())
                .bind(integration.as_uuid())
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        Ok((changed == 1).then_some(at))
    }

    pub async fn record_autodraft_event(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        kind: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        in_workspace!(self, workspace, conn => {
            sqlx::query(
                "INSERT INTO autodraft_events (id, workspace_id, integration_id, kind, message, at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(Uuid::now_v7())
            .bind(workspace.as_uuid())
            .bind(integration.as_uuid())
            .bind(kind)
            .bind(message)
            .bind(now())
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// Newest first.
    pub async fn autodraft_events(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        limit: i64,
    ) -> Result<Vec<AutoDraftEvent>, StoreError> {
        let rows: Vec<(String, String, DateTime<Utc>)> = in_workspace!(self, workspace, conn => {
            sqlx::query_as(
                "SELECT kind, message, at FROM autodraft_events WHERE workspace_id = $1 AND integration_id = $2 \
                 ORDER BY at DESC LIMIT $3",
            )
            .bind(workspace.as_uuid())
            .bind(integration.as_uuid())
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(kind, message, at)| AutoDraftEvent { kind, message, at })
            .collect())
    }
}
