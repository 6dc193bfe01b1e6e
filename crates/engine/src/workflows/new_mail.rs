//! The new-mail trigger. A mailbox's sync (the one auto-draft uses: one
//! sync per mailbox feeds both) queues a `workflow.new_mail` job per message
//! it finds while an enabled workflow waits on that mailbox. The job reads
//! the message once, matches it against each such workflow's filter, and
//! starts a run of each that matches. A run's idempotency key is the
//! message's id, so a message found twice (a catch-up, a job retried after
//! a crash, two replicas) starts each workflow once.

use domain::scopes::IntegrationType;
use std::sync::Arc;

use domain::IntegrationId;
use domain::WorkspaceId;
use domain::mail::{Message, SkipReason, skip_reason_for};
use domain::workflows::{MailFacts, Trigger};
use serde_json::{Value, json};
use store::Store;
use store::autodraft::FoundMessage;
use store::jobs::{ClaimedJob, NewJob};

use super::{Workflow, new_run};
use crate::mailbox::Mailbox;
use crate::vault::{Vault, VaultError};
use crate::worker::{JobError, JobFuture, JobHandler, recorded_by_worker};

pub const NEW_MAIL: &str = "workflow.new_mail";
/// Characters of the message's text a run's input carries as `snippet`.
const SNIPPET_CHARS: usize = 200;

/// The job that starts the runs a message found in `integration` calls for.
pub fn new_mail_job(
    workspace: WorkspaceId,
    integration: IntegrationId,
    message: &FoundMessage,
) -> NewJob {
    NewJob::new(
        NEW_MAIL,
        json!({
            "integration_id": integration.to_string(),
            "message_id": message.gmail_message_id,
        }),
    )
    .in_workspace(workspace)
    .dedupe_key(format!(
        "workflow.new_mail:{integration}:{}",
        message.gmail_message_id
    ))
}

/// The idempotency key of the run a message starts (per workflow): the
/// provider's id of the message; for IMAP, whose ids change when the server
/// renumbers a folder (a new UIDVALIDITY, then a catch-up finds the same
/// mail again), its Message-ID where it has one.
pub(super) fn run_key(message: &domain::mail::Message, kind: IntegrationType) -> String {
    let rfc822 = message.header("Message-ID").and_then(|value| {
        providers::google::message::message_ids(value)
            .into_iter()
            .next()
    });
    match (kind, rfc822) {
        (IntegrationType::Imap, Some(rfc822)) => format!("mailwright:new_mail:rfc822:{rfc822}"),
        _ => format!("mailwright:new_mail:{}", message.id),
    }
}

/// Handles `workflow.new_mail`.
pub struct StartNewMailRuns {
    store: Store,
    vault: Arc<Vault>,
}

impl StartNewMailRuns {
    pub fn new(store: Store, vault: Arc<Vault>) -> StartNewMailRuns {
        StartNewMailRuns { store, vault }
    }

    async fn start_runs(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        message_id: &str,
    ) -> Result<(), JobError> {
        let transient = |error: store::StoreError| JobError::Transient {
            message: format!("the database is unavailable ({error})"),
            retry_after: None,
        };
        let workflows = self
            .store
            .new_mail_workflows(workspace, integration)
            .await
            .map_err(transient)?;
        if workflows.is_empty() {
            return Ok(());
        }
        let inbox = match Mailbox::open(&self.vault, workspace, integration).await {
            Ok(inbox) => inbox,
            Err(VaultError::NotFound | VaultError::Disconnected) => return Ok(()),
            Err(error) => return Err(vault_failure(error)),
        };
        let message = match inbox.message(message_id).await {
            Ok(message) => message,
            // Deleted before it was read: nothing arrived to act on.
            Err(VaultError::Gone) => return Ok(()),
            Err(error) => return Err(vault_failure(error)),
        };
        let owner = inbox.integration().email.clone();
        // What this mailbox sent or drafts itself is not new mail (a reply
        // step answering into the inbox would start its own workflow
        // again), nor is spam or trash: auto-draft's rules say which.
        if let Some(reason @ (SkipReason::OwnMessage | SkipReason::SpamOrTrash)) =
            skip_reason_for(&message, &owner)
        {
            tracing::debug!(integration = %integration, gmail_message = %message_id, reason = reason.code(), "not new mail: no run");
            return Ok(());
        }
        let mut facts = facts_of(&message);
        let wants_label_names = workflows.iter().any(|workflow| {
            matches!(trigger_of(workflow), Some(Trigger::NewMail { filter, .. }) if filter.label.is_some())
        });
        if wants_label_names {
            let labels = inbox.labels().await.map_err(vault_failure)?;
            for (id, name) in labels {
                if message.label_ids.contains(&id) && !facts.labels.contains(&name) {
                    facts.labels.push(name);
                }
            }
        }
        let input = json!({ "message": message_input(&message) });
        for workflow in &workflows {
            let Some(Trigger::NewMail { filter, .. }) = trigger_of(workflow) else {
                continue;
            };
            // Mail received before the workflow existed never starts it
            // (a job queued earlier, or retried for hours, may reach it).
            // To the second: IMAP's INTERNALDATE has no finer grain.
            let created = workflow.created_at.timestamp() * 1000;
            if !filter.matches(&facts)
                || (message.received_at_millis > 0 && message.received_at_millis < created)
            {
                continue;
            }
            let (run, job) = new_run(workflow, input.clone(), "new_mail").map_err(transient)?;
            let (run, created) = self
                .store
                .create_run(
                    &run,
                    Some(&run_key(&message, inbox.integration().integration_type)),
                    Some(&job),
                )
                .await
                .map_err(transient)?;
            if created {
                tracing::info!(workflow = %workflow.id, run = %run.id, gmail_message = %message_id, "new mail started a run");
            }
        }
        Ok(())
    }
}

fn trigger_of(workflow: &Workflow) -> Option<Trigger> {
    serde_json::from_value(workflow.trigger.clone()).ok()
}

/// A mailbox that could not be read: retried until the retry horizon (a
/// broken connection says why on its page, and its owner was told; once it
/// is reconnected, the message still starts its runs).
fn vault_failure(error: VaultError) -> JobError {
    let facing = error.user_facing(None);
    match facing.retry {
        Some(retry_after) => JobError::Transient {
            message: facing.problem,
            retry_after,
        },
        None if facing.remedy.is_empty() => JobError::Permanent(facing.problem),
        None => JobError::Transient {
            message: facing.message(),
            retry_after: None,
        },
    }
}

/// What a trigger's filter looks at.
fn facts_of(message: &Message) -> MailFacts {
    let addresses = |name: &str| -> Vec<String> {
        message
            .headers
            .iter()
            .filter(|(header, _)| header.eq_ignore_ascii_case(name))
            .flat_map(|(_, value)| providers::google::message::address_list(value))
            .collect()
    };
    let mut to = addresses("To");
    to.extend(addresses("Cc"));
    MailFacts {
        from: message
            .from
            .as_ref()
            .map(|from| from.address.clone())
            .unwrap_or_default(),
        to,
        subject: message.header("Subject").unwrap_or_default().to_owned(),
        has_attachment: message.has_attachment,
        labels: message.label_ids.clone(),
    }
}

/// The run's `input.message`: ids and headers, and the start of the text.
fn message_input(message: &Message) -> Value {
    let words: Vec<&str> = message.text.split_whitespace().collect();
    let text = words.join(" ");
    let mut snippet: String = text.chars().take(SNIPPET_CHARS).collect();
    if snippet.len() < text.len() {
        snippet.push('…');
    }
    let date = chrono::DateTime::from_timestamp_millis(message.received_at_millis)
        .filter(|_| message.received_at_millis > 0)
        .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    json!({
        "id": message.id,
        "thread_id": message.thread_id,
        "from": message.from.as_ref().map(|from| from.display()),
        "to": facts_of(message).to,
        "subject": message.header("Subject").unwrap_or_default(),
        "date": date,
        "snippet": snippet,
    })
}

/// The integration and message a `workflow.new_mail` job names.
fn job_message(job: &ClaimedJob) -> Option<(WorkspaceId, IntegrationId, String)> {
    let integration = job
        .payload
        .get("integration_id")
        .and_then(Value::as_str)
        .and_then(|id| IntegrationId::parse(id).ok())?;
    let message = job.payload.get("message_id").and_then(Value::as_str)?;
    Some((job.workspace?, integration, message.to_owned()))
}

impl JobHandler for StartNewMailRuns {
    fn kind(&self) -> &'static str {
        NEW_MAIL
    }

    fn run<'a>(&'a self, job: &'a ClaimedJob) -> JobFuture<'a> {
        recorded_by_worker(async move {
            let Some((workspace, integration, message)) = job_message(job) else {
                return Err(JobError::Permanent("the job names no message".into()));
            };
            self.start_runs(workspace, integration, &message).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::mail::Address;

    #[test]
    fn the_input_carries_ids_headers_and_a_snippet() {
        let message = Message {
            id: "m1".into(),
            thread_id: "t1".into(),
            received_at_millis: 1_780_000_000_000,
            from: Some(Address {
                name: Some("Ada".into()),
                address: "ada@example.com".into(),
            }),
            headers: vec![
                ("Subject".into(), "Invoice 7".into()),
                ("To".into(), "Me <me@example.org>, b@example.org".into()),
                ("Cc".into(), "c@example.org".into()),
            ],
            text: format!("Hello\n\n  there {}", "x".repeat(300)),
            has_attachment: true,
            ..Message::default()
        };
        let input = message_input(&message);
        assert_eq!(input["from"], "Ada <ada@example.com>");
        assert_eq!(
            input["to"],
            json!(["me@example.org", "b@example.org", "c@example.org"])
        );
        assert_eq!(input["date"], "2026-05-28T20:26:40Z");
        let snippet = input["snippet"].as_str().unwrap();
        assert!(snippet.starts_with("Hello there x"), "{snippet}");
        assert_eq!(snippet.chars().count(), SNIPPET_CHARS + 1);
        let facts = facts_of(&message);
        assert_eq!(facts.from, "ada@example.com");
        assert!(facts.has_attachment);
    }
}
