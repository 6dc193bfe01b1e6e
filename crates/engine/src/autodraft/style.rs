//! The owner's writing style, learnt from their sent mail when auto-draft
//! is switched on and again weekly (unless they set it by hand).

use super::*;
use domain::drafting::style::{STYLE_SAMPLE, StyleProfile};

pub const LEARN_STYLE: &str = "autodraft.style";
/// How often a learnt style is learnt again.
pub const STYLE_REFRESH: Duration = Duration::from_secs(7 * 24 * 3600);

impl AutoDraft {
    /// The job that learns mailbox `id`'s style.
    pub fn style_job(workspace: WorkspaceId, integration: IntegrationId) -> NewJob {
        NewJob::new(
            LEARN_STYLE,
            json!({ "integration_id": integration.to_string() }),
        )
        .in_workspace(workspace)
        .dedupe_key(format!("autodraft.style:{integration}"))
    }

    /// Queue the style's learning when it was never learnt or is a week old
    /// (a style set by hand stays).
    pub(super) async fn learn_style_if_due(&self, mailbox: &AutoDraftMailbox) {
        let set_by_hand = mailbox
            .style
            .as_ref()
            .is_some_and(|style| style.learned_from == 0);
        let due = mailbox
            .style_learned_at
            .is_none_or(|at| store::now() - at >= chrono_duration(STYLE_REFRESH));
        if set_by_hand || !due {
            return;
        }
        let job = Self::style_job(mailbox.workspace, mailbox.integration_id);
        if let Err(error) = self.store.enqueue_job(&job).await {
            tracing::warn!(integration = %mailbox.integration_id, error = format!("{error:#}"), "cannot queue the style's learning; the next check tries again");
        }
    }

    /// Learn the style from the newest sent mail and keep it.
    pub async fn learn_style(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<(), JobError> {
        let Some(inbox) = self.mailbox_for_job(workspace, id).await? else {
            return Ok(());
        };
        let sent = inbox
            .sent_texts(STYLE_SAMPLE)
            .await
            .map_err(super::outcomes::vault_job_error)?;
        let style = StyleProfile::learn(&sent);
        // Nothing sent yet: no profile (one learnt from nothing would read
        // as set by hand); tried again in a week.
        let kept = (style.learned_from > 0).then_some(&style);
        self.store
            .set_autodraft_style(workspace, id, kept, Some(store::now()))
            .await
            .map_err(job_transient)?;
        tracing::info!(integration = %id, learned_from = style.learned_from, "learnt the mailbox owner's writing style");
        Ok(())
    }
}

/// The `autodraft.style` job.
pub struct LearnStyle(pub Arc<AutoDraft>);

impl JobHandler for LearnStyle {
    fn kind(&self) -> &'static str {
        LEARN_STYLE
    }

    fn run<'a>(&'a self, job: &'a ClaimedJob) -> JobFuture<'a> {
        recorded_by_worker(async move {
            let (workspace, id) = super::jobs::job_mailbox(job)?;
            self.0.learn_style(workspace, id).await
        })
    }
}
