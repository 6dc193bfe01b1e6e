//! A workflow run's state, typed: its status, each step's record, and the
//! definition the run executes.
//!
//! A run carries a copy of its workflow's steps from the moment it is
//! created (each step record holds its `definition`), so editing or deleting
//! the workflow later never changes what a run already queued does, and
//! nothing indexes into JSON by position.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::workflows::{Action, Step};

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    /// A step failed for a reason that may pass (an outage); the run tries
    /// again at its `next_attempt_at`.
    Retrying,
    Succeeded,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Retrying => "retrying",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<RunStatus> {
        match text {
            "queued" => Some(RunStatus::Queued),
            "running" => Some(RunStatus::Running),
            "retrying" => Some(RunStatus::Retrying),
            "succeeded" => Some(RunStatus::Succeeded),
            "failed" => Some(RunStatus::Failed),
            _ => None,
        }
    }

    /// Succeeded or failed: nothing will change it any more.
    pub fn is_ended(self) -> bool {
        matches!(self, RunStatus::Succeeded | RunStatus::Failed)
    }
}

/// Where a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Pending,
    /// Started and not recorded as ended: an attempt may have reached the
    /// provider. (Versions before typed runs wrote `sending` for this.)
    #[serde(alias = "sending")]
    Running,
    Succeeded,
    Failed,
    /// Its condition was false: it did nothing.
    Skipped,
}

impl StepStatus {
    /// Done for good, successfully: succeeded, or skipped by its condition
    /// (a re-run keeps such steps).
    pub fn is_done(self) -> bool {
        matches!(self, StepStatus::Succeeded | StepStatus::Skipped)
    }
}

/// Why a run or a step failed, in words for the person who reads the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunError {
    pub code: String,
    pub message: String,
}

impl RunError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> RunError {
        RunError {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// One step of a run: what it does and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub index: usize,
    pub action: Action,
    pub status: StepStatus,
    #[serde(default)]
    pub output: Value,
    #[serde(default)]
    pub error: Option<RunError>,
    /// The step as the workflow defined it when the run was created. Absent
    /// only in runs created by versions before typed runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<Step>,
}

/// A run's steps: each one's record, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunSteps(Vec<StepRecord>);

/// A run whose steps cannot be executed as recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "this run was queued by an earlier version without a copy of its steps, and its workflow has changed since; run the workflow again"
)]
pub struct DefinitionChanged;

impl RunSteps {
    /// Every step pending, each with its definition.
    pub fn pending(definition: &[Step]) -> RunSteps {
        RunSteps(
            definition
                .iter()
                .enumerate()
                .map(|(index, step)| StepRecord {
                    index,
                    action: step.action,
                    status: StepStatus::Pending,
                    output: Value::Null,
                    error: None,
                    definition: Some(step.clone()),
                })
                .collect(),
        )
    }

    pub fn from_records(records: Vec<StepRecord>) -> RunSteps {
        RunSteps(records)
    }

    pub fn records(&self) -> &[StepRecord] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &StepRecord> {
        self.0.iter()
    }

    pub fn get(&self, index: usize) -> Option<&StepRecord> {
        self.0.get(index)
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut StepRecord> {
        self.0.get_mut(index)
    }

    /// The steps this run executes: its own copy. A run from a version
    /// without copies takes `workflow_now` (the workflow's current steps)
    /// only if they still match its records action for action; otherwise
    /// it cannot tell what it was meant to do.
    pub fn definition(
        &self,
        workflow_now: Option<&[Step]>,
    ) -> Result<Vec<Step>, DefinitionChanged> {
        if let Some(copies) = self
            .0
            .iter()
            .map(|record| record.definition.clone())
            .collect::<Option<Vec<Step>>>()
        {
            return Ok(copies);
        }
        match workflow_now {
            Some(steps)
                if steps.len() == self.0.len()
                    && steps
                        .iter()
                        .zip(&self.0)
                        .all(|(step, record)| step.action == record.action) =>
            {
                Ok(steps.to_vec())
            }
            _ => Err(DefinitionChanged),
        }
    }

    /// The first step that has not succeeded, if any.
    pub fn first_unfinished(&self) -> Option<usize> {
        self.0
            .iter()
            .position(|record| record.status != StepStatus::Succeeded)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn step(action: Action) -> Step {
        Step {
            action,
            integration_id: Some("i".into()),
            to: vec!["a@example.com".into()],
            cc: vec![],
            bcc: vec![],
            subject: "s".into(),
            body: "b".into(),
            condition: None,
            url: None,
            thread_id: None,
            label: None,
            message_id: None,
        }
    }

    #[test]
    fn a_run_keeps_the_steps_it_was_created_with() {
        let created_with = vec![step(Action::GmailSendEmail)];
        let steps = RunSteps::pending(&created_with);
        let edited = vec![step(Action::GmailSendEmail), step(Action::GmailCreateDraft)];
        assert_eq!(steps.definition(Some(&edited)).unwrap(), created_with);
        assert_eq!(steps.definition(None).unwrap(), created_with);
    }

    #[test]
    fn records_of_earlier_versions_read_and_take_the_workflow_only_while_it_matches() {
        // As written before typed runs: no definition, `sending` for a send in flight.
        let stored = json!([
            {"index": 0, "action": "gmail.send_email", "status": "sending", "output": null, "error": null}
        ]);
        let steps: RunSteps = serde_json::from_value(stored).unwrap();
        assert_eq!(steps.records()[0].status, StepStatus::Running);
        let same = vec![step(Action::GmailSendEmail)];
        assert_eq!(steps.definition(Some(&same)).unwrap(), same);
        let grown = vec![step(Action::GmailSendEmail), step(Action::GmailCreateDraft)];
        assert_eq!(steps.definition(Some(&grown)), Err(DefinitionChanged));
        let changed = vec![step(Action::GmailCreateDraft)];
        assert_eq!(steps.definition(Some(&changed)), Err(DefinitionChanged));
        assert_eq!(steps.definition(None), Err(DefinitionChanged));
    }

    #[test]
    fn statuses_read_and_write_their_names() {
        for status in [
            RunStatus::Queued,
            RunStatus::Running,
            RunStatus::Retrying,
            RunStatus::Succeeded,
            RunStatus::Failed,
        ] {
            assert_eq!(RunStatus::parse(status.as_str()), Some(status));
            assert_eq!(json!(status), json!(status.as_str()));
        }
        assert!(RunStatus::Failed.is_ended() && !RunStatus::Retrying.is_ended());
    }
}
