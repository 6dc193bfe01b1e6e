//! Starting scheduled runs.

use std::sync::Arc;

use serde_json::{Value, json};
use store::{Store, StoreError};

use super::Workflows;

/// Starts the runs of scheduled workflows. Each due workflow's next tick is
/// moved with compare-and-set before its run starts, so of several
/// schedulers (replicas) exactly one starts it; a tick missed while nothing
/// ran starts one run, not one per missed tick (the next tick is computed
/// from now).
pub struct Scheduler {
    store: Store,
    workflows: Arc<Workflows>,
}

impl Scheduler {
    pub fn new(store: Store, workflows: Arc<Workflows>) -> Scheduler {
        Scheduler { store, workflows }
    }

    /// Start every due run; how many started.
    pub async fn tick(&self, now: chrono::DateTime<chrono::Utc>) -> Result<usize, StoreError> {
        let mut started = 0;
        for workflow in self.store.due_scheduled_workflows(now, 100).await? {
            let Some(due) = workflow.next_run_at else {
                continue;
            };
            let schedule = workflow
                .trigger
                .get("cron")
                .and_then(Value::as_str)
                .map(domain::workflows::Schedule::parse);
            let next = match schedule {
                Some(Ok(schedule)) => schedule.next_after(now),
                _ => {
                    tracing::warn!(workflow = %workflow.id, "a scheduled workflow has no valid cron; it is no longer scheduled");
                    None
                }
            };
            if !self
                .store
                .advance_schedule(workflow.workspace, workflow.id, due, next)
                .await?
            {
                continue;
            }
            let key = format!("schedule:{}", due.to_rfc3339());
            self.workflows
                .execute(
                    &workflow,
                    json!({ "scheduled_at": due }),
                    "schedule",
                    Some(&key),
                )
                .await?;
            started += 1;
        }
        Ok(started)
    }

    /// Tick every `every` until `shutdown` turns true.
    pub async fn run(
        self: Arc<Self>,
        every: std::time::Duration,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        crate::supervisor::every(every, shutdown, "the scheduler", || self.tick(store::now())).await
    }
}
