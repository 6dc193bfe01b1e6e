//! The failure-rate alert.

use super::*;

impl AutoDraft {
    /// The failure-rate alert: after a failure, fire when the window's
    /// failure share reaches the threshold; after a success while firing,
    /// clear when it dropped below. One notice per episode.
    pub(super) async fn check_alert(&self, integration: &Integration, after_failure: bool) {
        if let Err(error) = self.check_alert_inner(integration, after_failure).await {
            tracing::error!(integration = %integration.id, error = format!("{error:#}"), "cannot evaluate the auto-draft failure alert");
        }
    }

    pub(super) async fn check_alert_inner(
        &self,
        integration: &Integration,
        after_failure: bool,
    ) -> anyhow::Result<()> {
        let (workspace, id) = (integration.workspace, integration.id);
        if !after_failure {
            // Cheap path: nothing to clear unless the alert is firing.
            let firing = self
                .store
                .autodraft_mailbox(workspace, id)
                .await?
                .is_some_and(|mailbox| mailbox.alert_active_since.is_some());
            if !firing {
                return Ok(());
            }
        }
        let since = store::now() - chrono_duration(self.settings.alert_window);
        let (finished, failed) = self
            .store
            .autodraft_outcomes_since(workspace, id, since)
            .await?;
        let rate = if finished == 0 {
            0.0
        } else {
            failed as f64 / finished as f64
        };
        let breached = finished >= self.settings.alert_min_messages
            && rate >= self.settings.alert_failure_rate;
        if after_failure && breached {
            if let Some(at) = self.store.set_autodraft_alert(workspace, id, true).await? {
                let percent = (rate * 100.0).round();
                let message = format!(
                    "{failed} of the last {finished} messages ({percent}%) could not be drafted within {} minutes.",
                    self.settings.alert_window.as_secs() / 60
                );
                tracing::warn!(integration = %id, event = "autodraft_failure_rate_alert", failed, finished, "{message}");
                metrics::counter!(ALERTS).increment(1);
                self.store
                    .record_autodraft_event(workspace, id, "failure_rate_alert", &message)
                    .await?;
                self.notifier
                    .autodraft_failing(integration, &message, at)
                    .await;
            }
        } else if !after_failure
            && !breached
            && self
                .store
                .set_autodraft_alert(workspace, id, false)
                .await?
                .is_some()
        {
            tracing::info!(integration = %id, event = "autodraft_failure_rate_recovered", "auto-draft failures are back below the alert threshold");
            self.store
                .record_autodraft_event(
                    workspace,
                    id,
                    "failure_rate_recovered",
                    "Drafting works again; the failure rate is below the alert threshold.",
                )
                .await?;
        }
        Ok(())
    }
}
