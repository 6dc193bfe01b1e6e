//! The outbox of Mailwright's own email.

use chrono::{DateTime, Utc};
use domain::{JobId, WorkspaceId};
use uuid::Uuid;

use crate::jobs::{NewJob, insert_job};
use crate::{Store, StoreError, across_workspaces, in_workspace, in_workspace_tx, now};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSystemEmail {
    pub workspace: WorkspaceId,
    pub kind: String,
    pub dedupe_key: Option<String>,
    /// `None` when the recipient has no known address (kept as undeliverable).
    pub to: Option<String>,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SystemEmailRecord {
    pub id: Uuid,
    pub workspace_id: Option<Uuid>,
    pub kind: String,
    pub to_address: Option<String>,
    pub subject: String,
    pub text_body: String,
    pub html_body: Option<String>,
    pub status: String,
    pub provider: Option<String>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, workspace_id, kind, to_address, subject, text_body, html_body, status, provider, last_error, \
     created_at, sent_at";

impl Store {
    /// Put an email in the outbox and, in the same transaction, the job of
    /// kind `delivery_job` (payload `{"email_id"}`) that will deliver it: a
    /// queued email always has its job. `None` when an email with the same
    /// dedupe key exists already (the episode was told about).
    pub async fn queue_system_email(
        &self,
        email: &NewSystemEmail,
        delivery_job: &str,
    ) -> Result<Option<Uuid>, StoreError> {
        let id = Uuid::now_v7();
        let status = if email.to.is_some() {
            "queued"
        } else {
            "undeliverable"
        };
        let job = NewJob::new(delivery_job, serde_json::json!({ "email_id": id }))
            .in_workspace(email.workspace);
        let inserted = in_workspace_tx!(self, email.workspace, conn => {
            let inserted =             sqlx::query(
                "INSERT INTO system_emails (id, workspace_id, kind, dedupe_key, to_address, subject, text_body, html_body, \
                                            status, last_error, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING",
            )
            .bind(id)
            .bind(email.workspace.as_uuid())
            .bind(&email.kind)
            .bind(&email.dedupe_key)
            .bind(&email.to)
            .bind(&email.subject)
            .bind(&email.text)
            .bind(&email.html)
            .bind(status)
            .bind(email.to.is_none().then_some("the recipient has no email address"))
            .bind(now())
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if inserted == 1 && email.to.is_some() {
                insert_job!(&mut *conn, JobId::new(), &job);
            }
            inserted
        });
        if inserted == 1 && email.to.is_some() {
            self.announce_jobs(1);
        }
        Ok((inserted == 1).then_some(id))
    }

    /// An outbox email by id, whichever workspace it belongs to (the delivery
    /// job knows only the id).
    pub async fn system_email(&self, id: Uuid) -> Result<SystemEmailRecord, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM system_emails WHERE id = $1");
        let row: Option<SystemEmailRecord> = across_workspaces!(self, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&mut *conn).await?
        });
        row.ok_or(StoreError::NotFound)
    }

    /// Record a delivery outcome: `sent`, `failed`, or (still `queued`) the
    /// error of an attempt that will be retried.
    pub async fn record_system_email_delivery(
        &self,
        id: Uuid,
        status: &str,
        provider: &str,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let at = now();
        across_workspaces!(self, conn => {
            sqlx::query(
                "UPDATE system_emails SET status = $1, provider = $2, last_error = $3, \
                     sent_at = CASE WHEN $1 = 'sent' THEN $4 ELSE sent_at END \
                 WHERE id = $5",
            )
            .bind(status)
            .bind(provider)
            .bind(error)
            .bind(at)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// The workspace's system email, newest first.
    pub async fn system_emails(
        &self,
        workspace: WorkspaceId,
        limit: i64,
    ) -> Result<Vec<SystemEmailRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM system_emails WHERE workspace_id = $1 ORDER BY created_at DESC LIMIT $2"
        );
        Ok(in_workspace!(self, workspace, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(workspace.as_uuid()).bind(limit).fetch_all(&mut *conn).await?
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestDatabase, take_job_announcement};

    #[tokio::test]
    async fn a_queued_email_wakes_a_worker_and_a_repeat_or_undeliverable_one_does_not() {
        let (_db, store) = TestDatabase::migrated().await;
        let workspace = store.create_workspace("w").await.unwrap().id;
        let email = |to: Option<&str>, dedupe_key: &str| NewSystemEmail {
            workspace,
            kind: "test".into(),
            dedupe_key: Some(dedupe_key.into()),
            to: to.map(str::to_owned),
            subject: "Hello".into(),
            text: "Hi".into(),
            html: None,
        };
        // Whether the email was added to the outbox.
        let queued = async |email: NewSystemEmail| {
            store
                .queue_system_email(&email, "test.deliver")
                .await
                .unwrap()
                .is_some()
        };
        let to = Some("ann@example.com");
        assert!(queued(email(to, "a")).await);
        assert!(take_job_announcement(&store).await, "its delivery job");
        assert!(!queued(email(to, "a")).await);
        assert!(!take_job_announcement(&store).await, "told once already");
        assert!(queued(email(None, "b")).await);
        assert!(!take_job_announcement(&store).await, "nothing to deliver");
    }
}
