//! The two job kinds on the queue.

use super::*;

/// The mailbox a per-mailbox job (`autodraft.sync`, `autodraft.watch`) names.
pub(super) fn job_mailbox(job: &ClaimedJob) -> Result<(WorkspaceId, IntegrationId), JobError> {
    let id = job
        .payload
        .get("integration_id")
        .and_then(Value::as_str)
        .and_then(|id| IntegrationId::parse(id).ok());
    match (job.workspace, id) {
        (Some(workspace), Some(id)) => Ok((workspace, id)),
        _ => Err(JobError::Permanent("the job names no mailbox".into())),
    }
}

/// The `autodraft.sync` job.
pub struct SyncMailbox(pub Arc<AutoDraft>);

impl JobHandler for SyncMailbox {
    fn kind(&self) -> &'static str {
        SYNC_MAILBOX
    }

    fn run<'a>(&'a self, job: &'a ClaimedJob) -> JobFuture<'a> {
        recorded_by_worker(async move {
            let (workspace, id) = job_mailbox(job)?;
            self.0.sync(workspace, id).await
        })
    }
}

/// The `autodraft.draft` job.
pub struct DraftMessage(pub Arc<AutoDraft>);

/// The message row an `autodraft.draft` job names, if its payload is well formed.
fn job_message(job: &ClaimedJob) -> Option<(WorkspaceId, Uuid)> {
    let row = job
        .payload
        .get("message_id")
        .and_then(Value::as_str)
        .and_then(|id| Uuid::parse_str(id).ok())?;
    Some((job.workspace?, row))
}

impl JobHandler for DraftMessage {
    fn kind(&self) -> &'static str {
        DRAFT_MESSAGE
    }

    fn run<'a>(&'a self, job: &'a ClaimedJob) -> JobFuture<'a> {
        recorded_by_worker(async move {
            let Some((workspace, row)) = job_message(job) else {
                return Err(JobError::Permanent("the job names no message".into()));
            };
            self.0.draft_message(job, workspace, row).await
        })
    }

    /// The message ends `failed`, saying how long it was tried.
    fn give_up<'a>(&'a self, job: &'a ClaimedJob, reason: &'a str) -> GiveUpFuture<'a> {
        Box::pin(async move {
            let Some((workspace, row)) = job_message(job) else {
                return Ok(());
            };
            self.0.give_up_message(workspace, row, reason).await
        })
    }
}
