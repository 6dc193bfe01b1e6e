//! Outbound webhooks: a workspace's endpoints, and their deliveries (one row
//! per event per endpoint, each delivered by a job queued in the same
//! transaction).

use chrono::{DateTime, Utc};
use domain::{JobId, WorkspaceId};
use sqlx::types::Json;
use uuid::Uuid;

use crate::integrations::Sealed;
use crate::jobs::{HASTEN_JOB_SQL, NewJob, insert_job};
use crate::{Store, StoreError, across_workspaces, in_workspace, in_workspace_tx, now};

/// Where a workspace wants its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub id: Uuid,
    pub workspace: WorkspaceId,
    pub url: String,
    pub description: String,
    /// Event type names.
    pub events: Vec<String>,
    pub secret: Sealed,
    pub enabled: bool,
    /// Why Mailwright switched it off, if it did.
    pub disabled_reason: Option<String>,
    /// Since when every delivery has failed.
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: Uuid,
    workspace_id: Uuid,
    url: String,
    description: String,
    events: Json<Vec<String>>,
    secret_key_id: String,
    secret: Vec<u8>,
    enabled: bool,
    disabled_reason: Option<String>,
    failing_since: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<EndpointRow> for WebhookEndpoint {
    fn from(row: EndpointRow) -> Self {
        WebhookEndpoint {
            id: row.id,
            workspace: WorkspaceId::from_uuid(row.workspace_id),
            url: row.url,
            description: row.description,
            events: row.events.0,
            secret: Sealed {
                key_id: row.secret_key_id,
                bytes: row.secret,
            },
            enabled: row.enabled,
            disabled_reason: row.disabled_reason,
            failing_since: row.failing_since,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

const ENDPOINT_COLUMNS: &str = "id, workspace_id, url, description, events, secret_key_id, secret, enabled, \
     disabled_reason, failing_since, created_at, updated_at";

/// One event on its way to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub id: Uuid,
    pub workspace: WorkspaceId,
    pub endpoint_id: Uuid,
    pub event_id: String,
    pub event_type: String,
    pub payload: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub response_status: Option<i32>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When its first attempt ended.
    pub first_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: Uuid,
    workspace_id: Uuid,
    endpoint_id: Uuid,
    event_id: String,
    event_type: String,
    payload: String,
    status: String,
    attempts: i32,
    response_status: Option<i32>,
    last_error: Option<String>,
    next_attempt_at: Option<DateTime<Utc>>,
    first_attempt_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl From<DeliveryRow> for WebhookDelivery {
    fn from(row: DeliveryRow) -> Self {
        WebhookDelivery {
            id: row.id,
            workspace: WorkspaceId::from_uuid(row.workspace_id),
            endpoint_id: row.endpoint_id,
            event_id: row.event_id,
            event_type: row.event_type,
            payload: row.payload,
            status: row.status,
            attempts: row.attempts,
            response_status: row.response_status,
            last_error: row.last_error,
            next_attempt_at: row.next_attempt_at,
            first_attempt_at: row.first_attempt_at,
            created_at: row.created_at,
            finished_at: row.finished_at,
        }
    }
}

const DELIVERY_COLUMNS: &str = "id, workspace_id, endpoint_id, event_id, event_type, payload, status, attempts, \
     response_status, last_error, next_attempt_at, first_attempt_at, created_at, finished_at";

/// How one attempt at a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// `delivered`, `pending` (tried again at `next_attempt_at`) or `failed`.
    pub status: &'static str,
    pub response_status: Option<i32>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl Store {
    pub async fn create_webhook_endpoint(
        &self,
        endpoint: &WebhookEndpoint,
    ) -> Result<(), StoreError> {
        in_workspace!(self, endpoint.workspace, conn => {
            sqlx::query(
                "INSERT INTO webhook_endpoints (id, workspace_id, url, description, events, secret_key_id, secret, \
                     enabled, disabled_reason, failing_since, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, $9, $9)",
            )
            .bind(endpoint.id)
            .bind(endpoint.workspace.as_uuid())
            .bind(&endpoint.url)
            .bind(&endpoint.description)
            .bind(Json(&endpoint.events))
            .bind(&endpoint.secret.key_id)
            .bind(&endpoint.secret.bytes)
            .bind(endpoint.enabled)
            .bind(endpoint.created_at)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// The workspace's endpoints, oldest first.
    pub async fn webhook_endpoints(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE workspace_id = $1 ORDER BY created_at, id"
        );
        let rows: Vec<EndpointRow> = in_workspace!(self, workspace, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(workspace.as_uuid())
                .fetch_all(&mut *conn)
                .await?
        });
        Ok(rows.into_iter().map(WebhookEndpoint::from).collect())
    }

    pub async fn webhook_endpoint(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
    ) -> Result<WebhookEndpoint, StoreError> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE workspace_id = $1 AND id = $2"
        );
        let row: Option<EndpointRow> = in_workspace!(self, workspace, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(workspace.as_uuid())
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
        });
        row.map(WebhookEndpoint::from).ok_or(StoreError::NotFound)
    }

    /// Replace an endpoint's URL, description, events and switch; switching
    /// it on (from off) clears why Mailwright had switched it off and its
    /// run of failures. Other edits keep the run of failures counting.
    pub async fn update_webhook_endpoint(
        &self,
        endpoint: &WebhookEndpoint,
    ) -> Result<(), StoreError> {
        let updated = in_workspace!(self, endpoint.workspace, conn => {
            sqlx::query(
                "UPDATE webhook_endpoints SET url = $1, description = $2, events = $3, enabled = $4, \
                     disabled_reason = CASE WHEN $4 AND NOT enabled THEN NULL ELSE disabled_reason END, \
                     failing_since = CASE WHEN $4 AND NOT enabled THEN NULL ELSE failing_since END, updated_at = $5 \
                 WHERE workspace_id = $6 AND id = $7",
            )
            .bind(&endpoint.url)
            .bind(&endpoint.description)
            .bind(Json(&endpoint.events))
            .bind(endpoint.enabled)
            .bind(now())
            .bind(endpoint.workspace.as_uuid())
            .bind(endpoint.id)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        if updated == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Replace an endpoint's signing secret; with `old`, only if it is still
    /// that ciphertext (re-encryption under a new key).
    pub async fn set_webhook_endpoint_secret(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
        old: Option<&Sealed>,
        new: &Sealed,
    ) -> Result<bool, StoreError> {
        let updated = in_workspace!(self, workspace, conn => {
            sqlx::query(
                "UPDATE webhook_endpoints SET secret_key_id = $1, secret = $2, updated_at = $3 \
                 WHERE workspace_id = $4 AND id = $5 AND ($6 OR secret = $7)",
            )
            .bind(&new.key_id)
            .bind(&new.bytes)
            .bind(now())
            .bind(workspace.as_uuid())
            .bind(id)
            .bind(old.is_none())
            .bind(old.map(|sealed| sealed.bytes.clone()).unwrap_or_default())
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        Ok(updated == 1)
    }

    /// Every endpoint's secret, for re-encryption under a new key.
    pub async fn webhook_endpoint_secrets(
        &self,
    ) -> Result<Vec<(WorkspaceId, Uuid, Sealed)>, StoreError> {
        let rows: Vec<(Uuid, Uuid, String, Vec<u8>)> = across_workspaces!(self, conn => {
            sqlx::query_as("SELECT workspace_id, id, secret_key_id, secret FROM webhook_endpoints")
                .fetch_all(&mut *conn)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(workspace, id, key_id, bytes)| {
                (
                    WorkspaceId::from_uuid(workspace),
                    id,
                    Sealed { key_id, bytes },
                )
            })
            .collect())
    }

    pub async fn delete_webhook_endpoint(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
    ) -> Result<(), StoreError> {
        let deleted = in_workspace!(self, workspace, conn => {
            sqlx::query("DELETE FROM webhook_endpoints WHERE workspace_id = $1 AND id = $2")
                .bind(workspace.as_uuid())
                .bind(id)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// One delivery for each enabled endpoint of the workspace that wants
    /// `event_type`, each with its delivery job, in one transaction. How many.
    pub async fn queue_webhook_event(
        &self,
        workspace: WorkspaceId,
        event_type: &str,
        event_id: &str,
        payload: &str,
        delivery_job: &str,
    ) -> Result<usize, StoreError> {
        // Most workspaces have no endpoint for most events: find out without
        // taking SQLite's write lock.
        let wanted: Vec<Json<Vec<String>>> = in_workspace!(self, workspace, conn => {
            sqlx::query_scalar("SELECT events FROM webhook_endpoints WHERE workspace_id = $1 AND enabled")
                .bind(workspace.as_uuid())
                .fetch_all(&mut *conn)
                .await?
        });
        if !wanted
            .iter()
            .any(|events| events.0.iter().any(|name| name == event_type))
        {
            return Ok(0);
        }
        let at = now();
        let queued = in_workspace_tx!(self, workspace, conn => {
            let endpoints: Vec<(Uuid, Json<Vec<String>>)> = sqlx::query_as(
                "SELECT id, events FROM webhook_endpoints WHERE workspace_id = $1 AND enabled ORDER BY created_at, id",
            )
            .bind(workspace.as_uuid())
            .fetch_all(&mut *conn)
            .await?;
            let mut queued = 0;
            for (endpoint, events) in endpoints {
                if !events.0.iter().any(|wanted| wanted == event_type) {
                    continue;
                }
                let delivery = Uuid::now_v7();
                sqlx::query(
                    "INSERT INTO webhook_deliveries (id, workspace_id, endpoint_id, event_id, event_type, payload, \
                         status, attempts, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7)",
                )
                .bind(delivery)
                .bind(workspace.as_uuid())
                .bind(endpoint)
                .bind(event_id)
                .bind(event_type)
                .bind(payload)
                .bind(at)
                .execute(&mut *conn)
                .await?;
                let job = NewJob::new(delivery_job, serde_json::json!({ "delivery_id": delivery }))
                    .in_workspace(workspace)
                    .dedupe_key(format!("webhook:{delivery}"));
                insert_job!(&mut *conn, JobId::new(), &job);
                queued += 1;
            }
            queued
        });
        if queued > 0 {
            self.announce_jobs(queued);
        }
        Ok(queued)
    }

    /// A delivery and its endpoint.
    pub async fn webhook_delivery(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
    ) -> Result<(WebhookDelivery, WebhookEndpoint), StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE workspace_id = $1 AND id = $2"
        );
        let row: Option<DeliveryRow> = in_workspace!(self, workspace, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(workspace.as_uuid())
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
        });
        let delivery = WebhookDelivery::from(row.ok_or(StoreError::NotFound)?);
        let endpoint = self
            .webhook_endpoint(workspace, delivery.endpoint_id)
            .await?;
        Ok((delivery, endpoint))
    }

    /// The endpoint's newest `limit` deliveries.
    pub async fn webhook_deliveries(
        &self,
        workspace: WorkspaceId,
        endpoint: Uuid,
        limit: i64,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE workspace_id = $1 AND endpoint_id = $2 \
             ORDER BY created_at DESC, id DESC LIMIT $3"
        );
        let rows: Vec<DeliveryRow> = in_workspace!(self, workspace, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(workspace.as_uuid())
                .bind(endpoint)
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?
        });
        Ok(rows.into_iter().map(WebhookDelivery::from).collect())
    }

    /// Record one attempt, and the endpoint's run of failures: cleared by a
    /// success, started by the first failure. The endpoint's `failing_since`.
    pub async fn record_webhook_attempt(
        &self,
        workspace: WorkspaceId,
        delivery: &WebhookDelivery,
        attempt: &DeliveryAttempt,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at = now();
        let failing_since = in_workspace_tx!(self, workspace, conn => {
            sqlx::query(
                "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1, response_status = $2, \
                     last_error = $3, next_attempt_at = $4, finished_at = $5, \
                     first_attempt_at = COALESCE(first_attempt_at, $8) \
                 WHERE workspace_id = $6 AND id = $7",
            )
            .bind(attempt.status)
            .bind(attempt.response_status)
            .bind(&attempt.last_error)
            .bind(attempt.next_attempt_at)
            .bind((attempt.status != "pending").then_some(at))
            .bind(workspace.as_uuid())
            .bind(delivery.id)
            .bind(at)
            .execute(&mut *conn)
            .await?;
            let delivered = attempt.status == "delivered";
            sqlx::query(
                "UPDATE webhook_endpoints SET failing_since = CASE WHEN $1 THEN NULL ELSE COALESCE(failing_since, $2) END \
                 WHERE workspace_id = $3 AND id = $4",
            )
            .bind(delivered)
            .bind(at)
            .bind(workspace.as_uuid())
            .bind(delivery.endpoint_id)
            .execute(&mut *conn)
            .await?;
            let failing_since: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(
                "SELECT failing_since FROM webhook_endpoints WHERE workspace_id = $1 AND id = $2",
            )
            .bind(workspace.as_uuid())
            .bind(delivery.endpoint_id)
            .fetch_optional(&mut *conn)
            .await?;
            failing_since.flatten()
        });
        Ok(failing_since)
    }

    /// Switch an endpoint off, saying why; true if it was on (so its owner
    /// is told once).
    pub async fn disable_webhook_endpoint(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let changed = in_workspace!(self, workspace, conn => {
            sqlx::query(
                "UPDATE webhook_endpoints SET enabled = $1, disabled_reason = $2, updated_at = $3 \
                 WHERE workspace_id = $4 AND id = $5 AND enabled",
            )
            .bind(false)
            .bind(reason)
            .bind(now())
            .bind(workspace.as_uuid())
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        Ok(changed == 1)
    }

    /// Delete deliveries that ended before `before`, in every workspace
    /// (housekeeping: the log keeps recent history, not all of it).
    pub async fn purge_finished_webhook_deliveries(
        &self,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let deleted = across_workspaces!(self, conn => {
            sqlx::query("DELETE FROM webhook_deliveries WHERE finished_at IS NOT NULL AND finished_at < $1")
                .bind(before)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        Ok(deleted)
    }

    /// Queue a delivery again ("send again"): pending, with a new job.
    pub async fn redeliver_webhook(
        &self,
        workspace: WorkspaceId,
        endpoint: Uuid,
        id: Uuid,
        delivery_job: &str,
    ) -> Result<(), StoreError> {
        let job = NewJob::new(delivery_job, serde_json::json!({ "delivery_id": id }))
            .in_workspace(workspace)
            .dedupe_key(format!("webhook:{id}"));
        let updated = in_workspace_tx!(self, workspace, conn => {
            let updated = sqlx::query(
                "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = NULL, finished_at = NULL \
                 WHERE workspace_id = $1 AND endpoint_id = $2 AND id = $3",
            )
            .bind(workspace.as_uuid())
            .bind(endpoint)
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if updated == 1 {
                insert_job!(&mut *conn, JobId::new(), &job);
                // A job for it already waiting out a backoff: now, not then.
                sqlx::query(HASTEN_JOB_SQL)
                    .bind(now())
                    .bind(format!("webhook:{id}"))
                    .execute(&mut *conn)
                    .await?;
            }
            updated
        });
        if updated == 0 {
            return Err(StoreError::NotFound);
        }
        self.announce_jobs(1);
        Ok(())
    }
}
