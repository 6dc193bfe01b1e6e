//! Telling people when their mailbox needs them: one email per episode
//! (deduplicated in the database), queued in the outbox and delivered by a
//! job with retries, so a provider outage delays the notice but never loses
//! it and never slows the request or job that noticed the breakage.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use domain::WorkspaceId;
use domain::explain::explain;
use domain::scopes::IntegrationStatus;
use minijinja::{Environment, context};
use providers::mail::{MailError, SystemEmail, SystemMailer};
use store::Store;
use store::integrations::Integration;
use store::system_emails::NewSystemEmail;
pub use store::system_emails::SystemEmailRecord;

use crate::error::ServiceError;
use crate::worker::{JobError, JobFuture, JobHandler, recorded_by_worker};

pub const DELIVER_SYSTEM_EMAIL: &str = "system_email.deliver";
pub const SYSTEM_EMAILS: &str = "mailwright_system_emails_total";

fn templates() -> &'static Environment<'static> {
    static TEMPLATES: OnceLock<Environment<'static>> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        let mut environment = Environment::new();
        // `.html` names are auto-escaped; the text version is not HTML.
        environment
            .add_template(
                "integration_broke.html",
                include_str!("templates/integration_broke.html"),
            )
            .expect("valid template");
        environment
            .add_template(
                "integration_broke.txt",
                include_str!("templates/integration_broke.txt"),
            )
            .expect("valid template");
        environment
    })
}

pub struct Notifier {
    store: Store,
    /// `https://mail.example.com`, for links in emails.
    public_url: String,
}

impl Notifier {
    /// The workspace's newest `limit` system emails, each with the status
    /// people see: one queued again after a failed attempt is `retrying`.
    pub async fn outbox(
        &self,
        workspace: WorkspaceId,
        limit: i64,
    ) -> Result<Vec<SystemEmailRecord>, ServiceError> {
        let mut emails = self.store.system_emails(workspace, limit).await?;
        for email in &mut emails {
            if email.status == "queued" && email.last_error.is_some() {
                email.status = "retrying".into();
            }
        }
        Ok(emails)
    }

    pub fn new(store: Store, public_url: String) -> Notifier {
        Notifier {
            store,
            public_url: public_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The integration just became `needs_reauth` or `missing_scopes` (at
    /// `transition`): tell its owner, once for this episode.
    pub async fn integration_broke(
        &self,
        integration: &Integration,
        status: IntegrationStatus,
        transition: DateTime<Utc>,
    ) {
        if let Err(error) = self
            .queue_integration_notice(integration, status, transition)
            .await
        {
            // The status and last_error already tell the story in the UI and API.
            tracing::error!(integration = %integration.id, error = format!("{error:#}"), "cannot queue the notice");
        }
    }

    /// Auto-draft's failure rate for `integration` crossed the alert
    /// threshold (at `since`): tell the owner, once for this episode.
    pub async fn autodraft_failing(
        &self,
        integration: &Integration,
        summary: &str,
        since: DateTime<Utc>,
    ) {
        if let Err(error) = self
            .queue_autodraft_notice(integration, summary, since)
            .await
        {
            tracing::error!(integration = %integration.id, error = format!("{error:#}"), "cannot queue the auto-draft alert");
        }
    }

    /// Queue a plain-text notice (once per `dedupe_key`).
    async fn queue_notice(
        &self,
        workspace: WorkspaceId,
        to: Option<String>,
        kind: &str,
        dedupe_key: String,
        subject: String,
        text: String,
    ) -> anyhow::Result<()> {
        let email = NewSystemEmail {
            workspace,
            kind: kind.to_owned(),
            dedupe_key: Some(dedupe_key),
            to,
            subject,
            text,
            html: None,
        };
        self.store
            .queue_system_email(&email, DELIVER_SYSTEM_EMAIL)
            .await?;
        Ok(())
    }

    /// The email address of the workspace's first owner, if it has one.
    async fn owner_address(&self, workspace: WorkspaceId) -> anyhow::Result<Option<String>> {
        let Some(owner) = self.store.first_owner(workspace).await? else {
            return Ok(None);
        };
        Ok(self.store.user(owner).await?.email)
    }

    /// A run of `workflow` failed for good, and the workflow asks for an
    /// email then: tell the workspace's owner, once for this run.
    pub async fn run_failed(
        &self,
        workflow: &store::workflows::Workflow,
        run: &store::workflows::Run,
    ) {
        if let Err(error) = self.queue_run_failed_notice(workflow, run).await {
            tracing::error!(run = %run.id, error = format!("{error:#}"), "cannot queue the failed-run notice");
        }
    }

    async fn queue_run_failed_notice(
        &self,
        workflow: &store::workflows::Workflow,
        run: &store::workflows::Run,
    ) -> anyhow::Result<()> {
        let to = self.owner_address(workflow.workspace).await?;
        let why = run.error.as_ref().map_or_else(
            || "no reason was recorded".to_owned(),
            |error| error.message.clone(),
        );
        let text = format!(
            "Hello,\n\nA run of the workflow \"{name}\" failed for good: {why}\n\n\
             The run, step by step:\n{url}/runs/{run}\n\n\
             Once the cause is fixed, \"Re-run\" on that page starts again from the step \
             that failed; the steps before it are not done again.\n\n\
             You get this email because the workflow asks for it (\"Email me when a run fails \
             for good\" on its page).\n\n-- Mailwright\n",
            name = workflow.name,
            url = self.public_url,
            run = run.id,
        );
        self.queue_notice(
            workflow.workspace,
            to,
            "workflow_run_failed",
            format!("run-failed:{}", run.id),
            format!("A run of \"{}\" failed", workflow.name),
            text,
        )
        .await
    }

    /// A webhook endpoint was switched off after a day of failed
    /// deliveries: tell the workspace's owner, once per switch-off.
    pub async fn webhook_endpoint_disabled(
        &self,
        endpoint: &store::webhooks::WebhookEndpoint,
        reason: &str,
    ) {
        if let Err(error) = self.queue_webhook_notice(endpoint, reason).await {
            tracing::error!(endpoint = %endpoint.id, error = format!("{error:#}"), "cannot queue the webhook notice");
        }
    }

    async fn queue_webhook_notice(
        &self,
        endpoint: &store::webhooks::WebhookEndpoint,
        reason: &str,
    ) -> anyhow::Result<()> {
        let to = self.owner_address(endpoint.workspace).await?;
        let text = format!(
            "Hello,\n\nMailwright stopped sending events to the webhook endpoint {url}.\n\n{reason}\n\n\
             Its deliveries, with each answer, are in Settings:\n{public}/settings\n\n\
             Events that happen while it is off are not queued for it.\n\n-- Mailwright\n",
            url = endpoint.url,
            public = self.public_url,
        );
        self.queue_notice(
            endpoint.workspace,
            to,
            "webhook_endpoint_disabled",
            format!(
                "webhook-disabled:{}:{}",
                endpoint.id,
                endpoint.updated_at.timestamp_micros()
            ),
            "A webhook endpoint was switched off".to_owned(),
            text,
        )
        .await
    }

    async fn queue_autodraft_notice(
        &self,
        integration: &Integration,
        summary: &str,
        since: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let owner = self.store.user(integration.user).await?;
        let greeting = match &owner.display_name {
            Some(name) => format!("Hello {name},"),
            None => "Hello,".to_owned(),
        };
        let text = format!(
            "{greeting}\n\nAuto-draft is failing often for {email}: {summary}\n\n\
             The auto-draft page shows each failure with its reason:\n{url}/autodraft/{id}\n\n\
             What this alert means and what to check: {url}{runbook}\n\n\
             Mailwright keeps trying new mail, and will not email you about this again until \
             drafting has recovered and fails again.\n\n-- Mailwright\n",
            email = integration.email,
            url = self.public_url,
            id = integration.id,
            runbook = domain::explain::runbook_path("autodraft_failure_rate"),
        );
        let email = NewSystemEmail {
            workspace: integration.workspace,
            kind: "autodraft_failing".to_owned(),
            dedupe_key: Some(format!(
                "autodraft-alert:{}:{}",
                integration.id,
                since.timestamp_micros()
            )),
            to: owner.email,
            subject: format!("Auto-draft is failing for {}", integration.email),
            text,
            html: None,
        };
        self.store
            .queue_system_email(&email, DELIVER_SYSTEM_EMAIL)
            .await?;
        Ok(())
    }

    async fn queue_integration_notice(
        &self,
        integration: &Integration,
        status: IntegrationStatus,
        transition: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let owner = self.store.user(integration.user).await?;
        let kind_name = match integration.integration_type {
            domain::scopes::IntegrationType::Gmail => "Gmail",
            domain::scopes::IntegrationType::Calendar => "Google Calendar",
            domain::scopes::IntegrationType::Imap => "your mailbox",
            domain::scopes::IntegrationType::Outlook => "Outlook",
        };
        let (kind, subject, what_happened, what_stopped) = match status {
            IntegrationStatus::NeedsReauth => (
                "integration_needs_reauth",
                format!(
                    "Action needed: reconnect {kind_name} ({})",
                    integration.email
                ),
                explain(status, Some(&integration.email), &[]).problem,
                "reply drafts and workflows that use this mailbox".to_owned(),
            ),
            IntegrationStatus::MissingScopes => {
                let missing = integration
                    .granted_scopes
                    .missing_for(integration.integration_type);
                (
                    "integration_missing_scopes",
                    format!(
                        "Action needed: give Mailwright the permissions it needs ({})",
                        integration.email
                    ),
                    explain(status, Some(&integration.email), &missing).problem,
                    match integration.integration_type {
                        domain::scopes::IntegrationType::Outlook => {
                            "the features that need those permissions (for drafts: Mail.ReadWrite)"
                        }
                        _ => "the features that need those permissions (for drafts: gmail.compose)",
                    }
                    .to_owned(),
                )
            }
            _ => return Ok(()),
        };
        let values = context! {
            name => owner.display_name.clone(),
            email => integration.email.clone(),
            what_happened,
            what_stopped,
            reconnect_url => format!("{}/api/integrations/{}/reconnect", self.public_url, integration.id),
            runbook_url => format!("{}{}", self.public_url, domain::explain::runbook_path(status.as_str())),
        };
        let text = templates()
            .get_template("integration_broke.txt")?
            .render(&values)?;
        let html = templates()
            .get_template("integration_broke.html")?
            .render(&values)?;
        let email = NewSystemEmail {
            workspace: integration.workspace,
            kind: kind.to_owned(),
            dedupe_key: Some(format!(
                "integration:{}:{}:{}",
                integration.id,
                status.as_str(),
                transition.timestamp_micros()
            )),
            to: owner.email,
            subject,
            text,
            html: Some(html),
        };
        if self
            .store
            .queue_system_email(&email, DELIVER_SYSTEM_EMAIL)
            .await?
            .is_some()
        {
            tracing::info!(integration = %integration.id, kind, "queued a notice to the integration's owner");
        }
        Ok(())
    }
}

/// Delivers one outbox email through the configured provider.
pub struct DeliverSystemEmail {
    store: Store,
    events: crate::webhooks::Events,
    mailer: Arc<dyn SystemMailer>,
}

impl DeliverSystemEmail {
    pub fn new(store: Store, mailer: Arc<dyn SystemMailer>) -> DeliverSystemEmail {
        DeliverSystemEmail {
            events: crate::webhooks::Events::new(store.clone()),
            store,
            mailer,
        }
    }

    /// Announce that `record` could not be delivered, for good.
    async fn delivery_failed(&self, record: &SystemEmailRecord) {
        let Some(workspace) = record.workspace_id else {
            return;
        };
        self.events
            .emit(
                WorkspaceId::from_uuid(workspace),
                domain::webhooks::EventType::SystemEmailDeliveryFailed,
                serde_json::json!({
                    "email_id": record.id.to_string(),
                    "kind": record.kind,
                    "provider": self.mailer.provider(),
                }),
            )
            .await;
    }
}

/// The outbox row a delivery job names, if its payload is well formed.
fn job_email(job: &store::jobs::ClaimedJob) -> Option<uuid::Uuid> {
    job.payload
        .get("email_id")
        .and_then(|id| id.as_str())
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
}

impl JobHandler for DeliverSystemEmail {
    fn kind(&self) -> &'static str {
        DELIVER_SYSTEM_EMAIL
    }

    fn run<'a>(&'a self, job: &'a store::jobs::ClaimedJob) -> JobFuture<'a> {
        recorded_by_worker(async move {
            let id = job_email(job)
                .ok_or_else(|| JobError::Permanent("the job names no email".into()))?;
            let record =
                self.store
                    .system_email(id)
                    .await
                    .map_err(|error| JobError::Transient {
                        message: format!("the outbox cannot be read ({error})"),
                        retry_after: None,
                    })?;
            // Delivered by an earlier attempt that died before finishing the job.
            let (Some(to), "queued") = (record.to_address.clone(), record.status.as_str()) else {
                return Ok(());
            };
            let provider = self.mailer.provider();
            let failed_record = record.clone();
            let email = SystemEmail {
                to,
                subject: record.subject,
                text: record.text_body,
                html: record.html_body,
            };
            let outcome = self.mailer.send(&email).await;
            let record_outcome = |status: &'static str, error: Option<String>| async move {
                if let Err(store_error) = self
                    .store
                    .record_system_email_delivery(id, status, provider, error.as_deref())
                    .await
                {
                    tracing::error!(email = %id, error = format!("{store_error:#}"), "cannot record a delivery outcome");
                }
            };
            match outcome {
                Ok(()) => {
                    // The log-only mailer delivers nothing: say so, rather
                    // than "sent".
                    let outcome = if provider == "log" { "logged" } else { "sent" };
                    metrics::counter!(SYSTEM_EMAILS, "provider" => provider, "outcome" => outcome)
                        .increment(1);
                    record_outcome(outcome, None).await;
                    Ok(())
                }
                Err(MailError::Transient {
                    reason,
                    retry_after,
                }) => {
                    metrics::counter!(SYSTEM_EMAILS, "provider" => provider, "outcome" => "retrying").increment(1);
                    // Retried until the horizon; `give_up` then marks it failed.
                    record_outcome("queued", Some(reason.clone())).await;
                    Err(JobError::Transient {
                        message: reason,
                        retry_after,
                    })
                }
                Err(MailError::Permanent(reason)) => {
                    metrics::counter!(SYSTEM_EMAILS, "provider" => provider, "outcome" => "failed")
                        .increment(1);
                    record_outcome("failed", Some(reason.clone())).await;
                    self.delivery_failed(&failed_record).await;
                    Err(JobError::Permanent(reason))
                }
            }
        })
    }

    /// The email ends `failed`; its last error stays as recorded.
    fn give_up<'a>(
        &'a self,
        job: &'a store::jobs::ClaimedJob,
        reason: &'a str,
    ) -> crate::worker::GiveUpFuture<'a> {
        Box::pin(async move {
            let Some(id) = job_email(job) else {
                return Ok(());
            };
            let record = self.store.system_email(id).await?;
            if record.status != "queued" {
                return Ok(());
            }
            let error = match &record.last_error {
                Some(last) => format!("{last} ({reason})"),
                None => reason.to_owned(),
            };
            self.store
                .record_system_email_delivery(id, "failed", self.mailer.provider(), Some(&error))
                .await?;
            self.delivery_failed(&record).await;
            Ok(())
        })
    }
}
