//! The language model's token use per mailbox, UTC day and model.

use chrono::NaiveDate;
use domain::{IntegrationId, WorkspaceId};

use crate::{Store, StoreError, in_workspace};

/// One mailbox's use of one model on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmUsage {
    pub day: NaiveDate,
    pub model: String,
    pub tokens: i64,
    pub calls: i64,
}

impl Store {
    /// Add one call's `tokens` to the mailbox's use of `model` on `day`;
    /// the day's total for the mailbox after it.
    pub async fn add_llm_usage(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        day: NaiveDate,
        model: &str,
        tokens: i64,
    ) -> Result<i64, StoreError> {
        Ok(in_workspace!(self, workspace, conn => {
            sqlx::query(
                "INSERT INTO llm_usage (workspace_id, integration_id, day, model, tokens, calls) \
                 VALUES ($1, $2, $3, $4, $5, 1) \
                 ON CONFLICT (integration_id, day, model) DO UPDATE \
                     SET tokens = llm_usage.tokens + $5, calls = llm_usage.calls + 1",
            )
            .bind(workspace.as_uuid())
            .bind(integration.as_uuid())
            .bind(day)
            .bind(model)
            .bind(tokens)
            .execute(&mut *conn)
            .await?;
            sqlx::query_scalar::<_, i64>(
                "SELECT CAST(COALESCE(SUM(tokens), 0) AS BIGINT) FROM llm_usage \
                 WHERE workspace_id = $1 AND integration_id = $2 AND day = $3",
            )
            .bind(workspace.as_uuid())
            .bind(integration.as_uuid())
            .bind(day)
            .fetch_one(&mut *conn)
            .await?
        }))
    }

    /// The mailbox's use of every model from `since` on, newest day first.
    pub async fn llm_usage(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        since: NaiveDate,
    ) -> Result<Vec<LlmUsage>, StoreError> {
        let rows: Vec<(NaiveDate, String, i64, i64)> = in_workspace!(self, workspace, conn => {
            sqlx::query_as(
                "SELECT day, model, tokens, calls FROM llm_usage \
                 WHERE workspace_id = $1 AND integration_id = $2 AND day >= $3 \
                 ORDER BY day DESC, model",
            )
            .bind(workspace.as_uuid())
            .bind(integration.as_uuid())
            .bind(since)
            .fetch_all(&mut *conn)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(day, model, tokens, calls)| LlmUsage {
                day,
                model,
                tokens,
                calls,
            })
            .collect())
    }
}
