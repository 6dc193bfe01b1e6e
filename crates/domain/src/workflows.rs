//! Workflow definitions and their rules: a trigger and ordered steps whose
//! string fields are templates over `{{ input.* }}`. Parsed and validated at
//! the edge (every problem named by field); rendered at run time, where a
//! rendered header field with CR or LF (header injection) fails the run.
//!
//! Rendering has a budget (see [`TEMPLATE_FUEL`] and the limits after it):
//! templates are written by tenants, and a render runs on a shared machine.
//! What the template alone shows will exceed it is refused when the workflow
//! is saved; the rest fails the run when it happens.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Template instructions one step's fields may run together: a loop over a
/// few thousand input items fits, nested loops over large ranges do not
/// (tens of milliseconds of rendering).
pub const TEMPLATE_FUEL: u64 = 100_000;
/// Bytes one rendered field may have: far more than any email needs, far
/// less than a row or a message that hurts.
pub const MAX_RENDERED_FIELD_BYTES: usize = 256 * 1024;
/// Bytes of values (strings, lists, maps; counted by size) one step's
/// templates may build while rendering: four times the largest input, so
/// sorting or filtering a whole input fits, and no expression allocates much
/// before it is refused.
pub const MAX_BUILT_BYTES: u64 = 4 * 1024 * 1024;
/// How long rendering one step may take.
pub const RENDER_TIME_LIMIT: Duration = Duration::from_secs(2);
/// How deeply a value a template builds may nest (rendering such values
/// recurses).
pub const MAX_BUILT_NESTING: usize = 64;

/// How a run starts. A field it does not know is refused (a mistyped
/// `filter` must not turn into "any new mail").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    Manual,
    Webhook,
    Schedule {
        cron: String,
    },
    /// Mail arriving in a connected mailbox that matches `filter`.
    NewMail {
        integration_id: String,
        #[serde(default)]
        filter: MailFilter,
    },
}

/// A parsed cron expression (5 fields, or 6 with seconds; UTC).
pub struct Schedule(croner::Cron);

impl Schedule {
    pub fn parse(expression: &str) -> Result<Schedule, String> {
        croner::Cron::new(expression)
            .parse()
            .map(Schedule)
            .map_err(|error| format!("is not a cron expression such as `0 9 * * 1-5` ({error})"))
    }

    /// The first occurrence strictly after `after`.
    pub fn next_after(
        &self,
        after: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        self.0.find_next_occurrence(&after, false).ok()
    }
}

impl Trigger {
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Webhook => "webhook",
            Trigger::Schedule { .. } => "schedule",
            Trigger::NewMail { .. } => "new_mail",
        }
    }

    /// The mailbox a new-mail trigger watches.
    pub fn watched_integration(&self) -> Option<&str> {
        match self {
            Trigger::NewMail { integration_id, .. } => Some(integration_id),
            _ => None,
        }
    }
}

pub use filter::{MailFacts, MailFilter, wildcard_match};
mod filter;

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    #[serde(rename = "gmail.send_email")]
    GmailSendEmail,
    #[serde(rename = "gmail.create_draft")]
    GmailCreateDraft,
    #[serde(rename = "email.send_system")]
    EmailSendSystem,
    #[serde(rename = "http.post")]
    HttpPost,
    #[serde(rename = "gmail.reply")]
    GmailReply,
    #[serde(rename = "gmail.add_label")]
    GmailAddLabel,
    #[serde(rename = "gmail.remove_label")]
    GmailRemoveLabel,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::GmailSendEmail => "gmail.send_email",
            Action::GmailCreateDraft => "gmail.create_draft",
            Action::EmailSendSystem => "email.send_system",
            Action::HttpPost => "http.post",
            Action::GmailReply => "gmail.reply",
            Action::GmailAddLabel => "gmail.add_label",
            Action::GmailRemoveLabel => "gmail.remove_label",
        }
    }

    pub fn parse(text: &str) -> Option<Action> {
        match text {
            "gmail.send_email" => Some(Action::GmailSendEmail),
            "gmail.create_draft" => Some(Action::GmailCreateDraft),
            "email.send_system" => Some(Action::EmailSendSystem),
            "http.post" => Some(Action::HttpPost),
            "gmail.reply" => Some(Action::GmailReply),
            "gmail.add_label" => Some(Action::GmailAddLabel),
            "gmail.remove_label" => Some(Action::GmailRemoveLabel),
            _ => None,
        }
    }

    /// Every action, in the order the workflow form offers them.
    pub const ALL: [Action; 7] = [
        Action::GmailSendEmail,
        Action::GmailCreateDraft,
        Action::GmailReply,
        Action::GmailAddLabel,
        Action::GmailRemoveLabel,
        Action::EmailSendSystem,
        Action::HttpPost,
    ];

    pub fn uses_gmail(self) -> bool {
        !matches!(self, Action::EmailSendSystem | Action::HttpPost)
    }

    /// Whether the step writes a new email (recipients and a subject are
    /// required).
    pub fn is_email(self) -> bool {
        matches!(
            self,
            Action::GmailSendEmail | Action::GmailCreateDraft | Action::EmailSendSystem
        )
    }

    /// Whether the step may carry recipients and a subject (a reply's are
    /// optional: it answers the sender, with `Re:` and the original subject).
    pub fn takes_addresses(self) -> bool {
        self.is_email() || self == Action::GmailReply
    }

    /// Whether the step changes a message's labels (needs `gmail.modify`).
    pub fn is_label(self) -> bool {
        matches!(self, Action::GmailAddLabel | Action::GmailRemoveLabel)
    }

    /// The step's action in words, for the workflow pages.
    pub fn describe(self) -> &'static str {
        match self {
            Action::GmailSendEmail => "Send an email from Gmail",
            Action::GmailCreateDraft => "Create a Gmail draft",
            Action::GmailReply => "Reply in the thread (Gmail)",
            Action::GmailAddLabel => "Add a Gmail label",
            Action::GmailRemoveLabel => "Remove a Gmail label",
            Action::EmailSendSystem => "Send a system email",
            Action::HttpPost => "POST JSON to a URL",
        }
    }
}

/// One step, as stored: every string a template. A field it does not know
/// is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<String>,
    /// `http.post`: where to POST the body (a template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bcc: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subject: String,
    /// The email's text; for `http.post`, the JSON body (label steps have
    /// none).
    #[serde(default)]
    pub body: String,
    /// `gmail.reply`: the thread to answer (a template); without it, the
    /// message that started the run (`input.message`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    /// Label steps: the label's name (a template; `add_label` creates it
    /// when the mailbox has none of that name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Label steps: the message to label (a template); without it, the
    /// message that started the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// A template expression over `input` and `steps` (e.g.
    /// `steps[0].message_id and input.vip`): the step runs only when it is
    /// true, and is `skipped` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

/// Longest condition.
pub const MAX_CONDITION_CHARS: usize = 500;

/// A field that is wrong, and why (for `validation_failed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Invalid {
        Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl Invalid {
    /// The problem in the words of the workflow form: "Step 1's To is
    /// empty: ...", not "steps[0].to[0] ...".
    pub fn in_words(&self) -> String {
        format!("{} {}", field_words(&self.field), self.message)
    }
}

/// A step field's path (`steps[0].to[1]`) as the form names it ("Step 1's
/// To, address 2"); anything else as given.
pub fn field_words(path: &str) -> String {
    let Some(rest) = path.strip_prefix("steps[") else {
        return path.to_owned();
    };
    let Some((index, field)) = rest.split_once("].") else {
        return match rest.strip_suffix(']').map(str::parse::<usize>) {
            Some(Ok(index)) => format!("Step {}", index + 1),
            _ => path.to_owned(),
        };
    };
    let Ok(index) = index.parse::<usize>() else {
        return path.to_owned();
    };
    let (name, position) = match field.split_once('[') {
        Some((name, position)) => (name, position.trim_end_matches(']').parse::<usize>().ok()),
        None => (field, None),
    };
    let name = match name {
        "to" => "To",
        "cc" => "Cc",
        "bcc" => "Bcc",
        "subject" => "subject",
        "body" => "message",
        "integration_id" => "Gmail connection",
        "thread_id" => "thread id",
        "message_id" => "message id",
        "label" => "label",
        "action" => "action",
        other => other,
    };
    let step = index + 1;
    match position {
        Some(position) if position > 0 => format!("Step {step}'s {name}, address {}", position + 1),
        _ => format!("Step {step}'s {name}"),
    }
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid::new(field, message)
}

fn has_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// `addr@example.com` or `Name <addr@example.com>`, one address.
pub fn valid_address(text: &str) -> Result<(), &'static str> {
    if text.contains(['\r', '\n']) {
        return Err("must not contain a line break");
    }
    let address = match (text.find('<'), text.rfind('>')) {
        (Some(open), Some(close)) if open < close && text[close + 1..].trim().is_empty() => {
            &text[open + 1..close]
        }
        (None, None) => text,
        _ => return Err("is not an address such as ada@example.com or Ada <ada@example.com>"),
    };
    crate::EmailAddress::parse(address)
        .map(|_| ())
        .map_err(|_| "is not an address such as ada@example.com or Ada <ada@example.com>")
}

impl Step {
    /// Check what can be checked before a run: the action's fields, every
    /// template parses and uses only what Mailwright templates support,
    /// literal addresses are addresses, no header field holds a line break,
    /// and no template certainly exceeds the render budget (a loop over
    /// `range(100000)` nested in another, `'x' * 10000000`).
    pub fn validate(&self, index: usize) -> Vec<Invalid> {
        let at = |field: &str| format!("steps[{index}].{field}");
        let mut problems = Vec::new();
        let action = self.action;
        match (action.uses_gmail(), &self.integration_id) {
            (true, None) => problems.push(invalid(
                at("integration_id"),
                "is required for Gmail actions",
            )),
            (false, Some(_)) => {
                problems.push(invalid(at("integration_id"), "is only for Gmail actions"))
            }
            _ => {}
        }
        if action.is_email() && self.to.is_empty() {
            problems.push(invalid(at("to"), "needs at least one address"));
        }
        if !action.takes_addresses() {
            for (name, used) in [
                ("to", !self.to.is_empty()),
                ("cc", !self.cc.is_empty()),
                ("bcc", !self.bcc.is_empty()),
                ("subject", !self.subject.is_empty()),
            ] {
                if used {
                    problems.push(invalid(at(name), "is only for email actions"));
                }
            }
        }
        if action.is_label() && !self.body.is_empty() {
            problems.push(invalid(at("body"), "is not used by label actions"));
        }
        for (name, used, allowed, only) in [
            (
                "url",
                self.url.is_some(),
                action == Action::HttpPost,
                "is only for http.post",
            ),
            (
                "thread_id",
                self.thread_id.is_some(),
                action == Action::GmailReply,
                "is only for gmail.reply",
            ),
            (
                "label",
                self.label.is_some(),
                action.is_label(),
                "is only for gmail.add_label and gmail.remove_label",
            ),
            (
                "message_id",
                self.message_id.is_some(),
                action.is_label(),
                "is only for gmail.add_label and gmail.remove_label",
            ),
        ] {
            if used && !allowed {
                problems.push(invalid(at(name), only));
            }
        }
        if action == Action::HttpPost {
            match &self.url {
                None => problems.push(invalid(at("url"), "is required for http.post")),
                Some(url) if has_template(url) => {}
                Some(url) => {
                    if let Err(problem) = crate::webhooks::OutboundUrl::parse(url, true) {
                        problems.push(invalid(at("url"), problem));
                    }
                }
            }
        }
        if action.is_label() {
            match &self.label {
                Some(label) if has_template(label) => {}
                Some(label) => {
                    if let Err(problem) = check_label(label) {
                        problems.push(invalid(at("label"), problem));
                    }
                }
                None => problems.push(invalid(
                    at("label"),
                    "is required for gmail.add_label and gmail.remove_label",
                )),
            }
        }
        for (name, id) in [
            ("thread_id", &self.thread_id),
            ("message_id", &self.message_id),
        ] {
            if let Some(id) = id
                && !has_template(id)
                && let Err(problem) = check_provider_id(id)
            {
                problems.push(invalid(at(name), problem));
            }
        }
        // What the templates certainly cost, summed over the step's fields.
        let mut spent = guard::Cost::default();
        for (name, list) in [("to", &self.to), ("cc", &self.cc), ("bcc", &self.bcc)] {
            for (position, address) in list.iter().enumerate() {
                let field = at(&format!("{name}[{position}]"));
                if address.contains(['\r', '\n']) {
                    problems.push(invalid(field, "must not contain a line break"));
                } else if has_template(address) {
                    if let Err(problem) = guard::check(address, &mut spent) {
                        problems.push(invalid(field, problem));
                    }
                } else if let Err(problem) = valid_address(address) {
                    problems.push(invalid(field, problem));
                }
            }
        }
        if self.subject.contains(['\r', '\n']) {
            problems.push(invalid(at("subject"), "must not contain a line break"));
        } else if self.action.is_email() && self.subject.trim().is_empty() {
            problems.push(invalid(at("subject"), "is required"));
        }
        let (url, label) = (
            self.url.clone().unwrap_or_default(),
            self.label.clone().unwrap_or_default(),
        );
        let (thread_id, message_id) = (
            self.thread_id.clone().unwrap_or_default(),
            self.message_id.clone().unwrap_or_default(),
        );
        for (name, text) in [
            ("subject", &self.subject),
            ("body", &self.body),
            ("url", &url),
            ("label", &label),
            ("thread_id", &thread_id),
            ("message_id", &message_id),
        ] {
            if let Err(problem) = guard::check(text, &mut spent) {
                problems.push(invalid(at(name), problem));
            }
        }
        if let Some(condition) = &self.condition {
            let field = at("condition");
            if condition.trim().is_empty() {
                problems.push(invalid(
                    field,
                    "must be an expression, such as `input.vip`, or left out",
                ));
            } else if condition.chars().count() > MAX_CONDITION_CHARS {
                problems.push(invalid(field, "must be at most 500 characters"));
            } else if ["{{", "}}", "{%", "%}", "{#", "#}"]
                .iter()
                .any(|marker| condition.contains(marker))
            {
                problems.push(invalid(
                    field,
                    "is an expression without {{ }} or {% %}, such as `steps[0].message_id`",
                ));
            } else if let Err(problem) = guard::check(&condition_template(condition), &mut spent) {
                problems.push(invalid(field, problem));
            }
        }
        problems
    }

    /// Whether the step runs: its condition over `input` and the earlier
    /// steps' `outputs` (no condition: it runs).
    pub fn condition_holds(
        &self,
        index: usize,
        input: &Value,
        outputs: &[Value],
        deadline: Instant,
    ) -> Result<bool, Invalid> {
        let Some(condition) = &self.condition else {
            return Ok(true);
        };
        let budget = guard::Budget::new(deadline);
        let context = run_context(input, outputs);
        guard::render(&budget, &condition_template(condition), &context)
            .map(|rendered| rendered == "yes")
            .map_err(|problem| invalid(format!("steps[{index}].condition"), problem))
    }

    /// The step with its templates filled from `input`, checked again: a
    /// rendered header field with a line break is refused, never sanitised.
    /// Synchronous and CPU-bound up to the budget: call it off the async
    /// runtime. A template that exceeds the budget fails here, naming the
    /// field and the limit.
    pub fn render(&self, index: usize, input: &Value) -> Result<RenderedStep, Invalid> {
        self.render_until(index, input, Instant::now() + RENDER_TIME_LIMIT)
    }

    /// [`Step::render`], giving up at `deadline`.
    pub fn render_until(
        &self,
        index: usize,
        input: &Value,
        deadline: Instant,
    ) -> Result<RenderedStep, Invalid> {
        self.render_after(index, input, &[], deadline)
    }

    /// [`Step::render_until`] with the earlier steps' `outputs`, which the
    /// templates see as `steps[0]`, `steps[1]`, ... (null for a skipped step).
    pub fn render_after(
        &self,
        index: usize,
        input: &Value,
        outputs: &[Value],
        deadline: Instant,
    ) -> Result<RenderedStep, Invalid> {
        let at = |field: &str| format!("steps[{index}].{field}");
        let budget = guard::Budget::new(deadline);
        let context = run_context(input, outputs);
        let render = |field: String, text: &str| {
            guard::render(&budget, text, &context).map_err(|problem| invalid(field, problem))
        };
        let addresses = |name: &str, list: &[String]| -> Result<Vec<String>, Invalid> {
            list.iter()
                .enumerate()
                .map(|(position, template)| {
                    let field = at(&format!("{name}[{position}]"));
                    let value = render(field.clone(), template)?;
                    if value.trim().is_empty() {
                        return Err(invalid(
                            field,
                            format!("is empty: the input gives `{template}` no value"),
                        ));
                    }
                    valid_address(value.trim()).map_err(|problem| invalid(field, problem))?;
                    Ok(value.trim().to_owned())
                })
                .collect()
        };
        let subject = render(at("subject"), &self.subject)?;
        if subject.contains(['\r', '\n']) {
            return Err(invalid(at("subject"), "must not contain a line break"));
        }
        let url = match &self.url {
            Some(template) => {
                let url = render(at("url"), template)?.trim().to_owned();
                // Private addresses are judged when it is called, by the
                // operator's setting.
                crate::webhooks::OutboundUrl::parse(&url, true)
                    .map_err(|problem| invalid(at("url"), format!("{problem} (it was `{url}`)")))?;
                Some(url)
            }
            None => None,
        };
        let label = match &self.label {
            Some(template) => {
                let label = render(at("label"), template)?.trim().to_owned();
                check_label(&label).map_err(|problem| {
                    invalid(at("label"), format!("{problem} (it was `{label}`)"))
                })?;
                Some(label)
            }
            None => None,
        };
        let provider_id =
            |name: &str, template: &Option<String>| -> Result<Option<String>, Invalid> {
                let Some(template) = template else {
                    return Ok(None);
                };
                let id = render(at(name), template)?.trim().to_owned();
                check_provider_id(&id)
                    .map_err(|problem| invalid(at(name), format!("{problem} (it was `{id}`)")))?;
                Ok(Some(id))
            };
        let thread_id = provider_id("thread_id", &self.thread_id)?;
        let message_id = provider_id("message_id", &self.message_id)?;
        let body = render(at("body"), &self.body)?;
        if self.action == Action::HttpPost && serde_json::from_str::<Value>(&body).is_err() {
            return Err(invalid(
                at("body"),
                "is not JSON once filled in (write it as JSON, with values such as \"{{ input.name }}\" in quotes)",
            ));
        }
        Ok(RenderedStep {
            action: self.action,
            url,
            integration_id: self.integration_id.clone(),
            to: addresses("to", &self.to)?,
            cc: addresses("cc", &self.cc)?,
            bcc: addresses("bcc", &self.bcc)?,
            subject,
            body,
            thread_id,
            label,
            message_id,
        })
    }
}

/// Longest label name Gmail takes.
pub const MAX_LABEL_CHARS: usize = 225;

/// A label name: not empty, one line, at most [`MAX_LABEL_CHARS`].
pub fn check_label(label: &str) -> Result<(), &'static str> {
    if label.trim().is_empty() {
        Err("must name a label, such as `Invoices`")
    } else if label.contains(['\r', '\n']) {
        Err("must not contain a line break")
    } else if label.chars().count() > MAX_LABEL_CHARS {
        Err("must be at most 225 characters")
    } else {
        Ok(())
    }
}

/// A mailbox's message or thread id: Gmail's (letters, digits, `-`, `_`),
/// IMAP's (`7:12:INBOX`, a conversation's `<id@host>`): visible ASCII, no
/// quotes or backslashes, at most 998 characters (a header line). Each
/// provider's client checks its own form again before using it.
pub fn check_provider_id(id: &str) -> Result<(), &'static str> {
    if !id.is_empty()
        && id.len() <= 998
        && id
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
    {
        Ok(())
    } else {
        Err("is not a message or thread id (visible ASCII without quotes or spaces)")
    }
}

/// What a step's templates see: the run's `input` and the earlier steps'
/// outputs as `steps`.
fn run_context(input: &Value, outputs: &[Value]) -> minijinja::Value {
    minijinja::context! {
        input => minijinja::Value::from_serialize(input),
        steps => minijinja::Value::from_serialize(outputs),
    }
}

/// A condition as the template that decides it.
fn condition_template(condition: &str) -> String {
    format!("{{% if ({condition}) %}}yes{{% endif %}}")
}

/// Most steps one workflow may hold.
pub const MAX_STEPS: usize = 20;
/// Longest workflow name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// A workflow as a person defines it: what the API takes and the UI's forms
/// build. [`Definition::validate`] checks everything that needs no database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub name: String,
    pub enabled: bool,
    pub trigger: Trigger,
    pub steps: Vec<Step>,
    /// Email the workspace's owner when a run fails for good.
    pub notify_on_failure: bool,
}

impl Definition {
    /// Every problem of the definition itself, by field (the name, the cron,
    /// the number of steps, each step).
    pub fn validate(&self) -> Vec<Invalid> {
        let mut problems = Vec::new();
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            problems.push(invalid("name", "must be 1 to 100 characters"));
        }
        match &self.trigger {
            Trigger::Schedule { cron } => {
                if let Err(problem) = Schedule::parse(cron) {
                    problems.push(invalid("trigger.cron", problem));
                }
            }
            Trigger::NewMail { filter, .. } => problems.extend(filter.validate()),
            Trigger::Manual | Trigger::Webhook => {}
        }
        if self.steps.is_empty() || self.steps.len() > MAX_STEPS {
            problems.push(invalid("steps", "must hold 1 to 20 steps"));
        }
        for (index, step) in self.steps.iter().enumerate() {
            problems.extend(step.validate(index));
        }
        problems
    }
}

/// A step ready to execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedStep {
    pub action: Action,
    pub url: Option<String>,
    pub integration_id: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub subject: String,
    pub body: String,
    /// `gmail.reply`: the thread named (none: the triggering message's).
    pub thread_id: Option<String>,
    /// Label steps: the label's name.
    pub label: Option<String>,
    /// Label steps: the message named (none: the triggering message).
    pub message_id: Option<String>,
}

mod guard;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn send(to: &str, subject: &str, body: &str) -> Step {
        Step {
            action: Action::GmailSendEmail,
            integration_id: Some("i".into()),
            to: vec![to.into()],
            cc: vec![],
            bcc: vec![],
            subject: subject.into(),
            body: body.into(),
            condition: None,
            url: None,
            thread_id: None,
            label: None,
            message_id: None,
        }
    }

    #[test]
    fn an_http_post_renders_its_url_and_a_json_body_or_says_why_not() {
        let post = Step {
            action: Action::HttpPost,
            integration_id: None,
            url: Some("https://hooks.example.com/{{ input.path }}".into()),
            to: vec![],
            subject: String::new(),
            body: r#"{"name": "{{ input.name }}"}"#.into(),
            ..send("x@example.com", "", "")
        };
        assert!(post.validate(0).is_empty(), "{:?}", post.validate(0));
        let rendered = post
            .render(0, &json!({"path": "in", "name": "Ada"}))
            .unwrap();
        assert_eq!(
            rendered.url.as_deref(),
            Some("https://hooks.example.com/in")
        );
        assert_eq!(rendered.body, r#"{"name": "Ada"}"#);
        let broken = post
            .render(0, &json!({"path": "in", "name": "A\"da"}))
            .unwrap_err();
        assert_eq!(broken.field, "steps[0].body");
        assert!(broken.message.contains("is not JSON"), "{}", broken.message);
        // `tojson` quotes what the input holds.
        let quoted = Step {
            body: r#"{"name": {{ input.name | tojson }}}"#.into(),
            ..post.clone()
        };
        let rendered = quoted
            .render(0, &json!({"path": "in", "name": "A\"da"}))
            .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&rendered.body).unwrap(),
            json!({"name": "A\"da"})
        );
        let nowhere = Step {
            url: Some("{{ input.path }}".into()),
            ..post.clone()
        };
        let refused = nowhere
            .render(0, &json!({"path": "ftp://x", "name": "A"}))
            .unwrap_err();
        assert_eq!(refused.field, "steps[0].url");
    }

    #[test]
    fn problems_read_in_the_forms_words() {
        assert_eq!(field_words("steps[0].to[0]"), "Step 1's To");
        assert_eq!(field_words("steps[2].cc[1]"), "Step 3's Cc, address 2");
        assert_eq!(field_words("steps[0].body"), "Step 1's message");
        assert_eq!(field_words("name"), "name");
        assert_eq!(field_words("steps[1]"), "Step 2");
        assert_eq!(field_words("steps[x].to"), "steps[x].to");
        let empty = send("{{ input.email }}", "Hi", "Hi")
            .render(0, &json!({"email": ""}))
            .unwrap_err();
        assert_eq!(
            empty.in_words(),
            "Step 1's To is empty: the input gives `{{ input.email }}` no value"
        );
    }

    #[test]
    fn schedules() {
        use chrono::TimeZone;
        let daily = Schedule::parse("0 9 * * *").unwrap();
        let at = chrono::Utc.with_ymd_and_hms(2026, 11, 22, 8, 0, 0).unwrap();
        assert_eq!(
            daily.next_after(at),
            Some(chrono::Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap())
        );
        let nine = chrono::Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap();
        assert_eq!(
            daily.next_after(nine),
            Some(chrono::Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap()),
            "strictly after"
        );
        assert!(Schedule::parse("every day at nine").is_err());
        assert!(Schedule::parse("61 * * * *").is_err());
    }

    #[test]
    fn addresses() {
        for good in [
            "ada@example.com",
            "Ada Lovelace <ada@example.com>",
            "\"Ada, L\" <ada@example.com>",
        ] {
            assert!(valid_address(good).is_ok(), "{good}");
        }
        for bad in [
            "ada",
            "Ada <ada>",
            "ada@example.com\r\nBcc: x@y.z",
            "<a@b.c> trailing",
            "a@b.c, d@e.f",
        ] {
            assert!(valid_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_names_each_field() {
        let step = Step {
            integration_id: None,
            ..send(
                "not an address",
                "Hi\r\nBcc: x@evil.example",
                "{{ input.name",
            )
        };
        let fields: Vec<String> = step
            .validate(0)
            .into_iter()
            .map(|problem| problem.field)
            .collect();
        assert_eq!(
            fields,
            [
                "steps[0].integration_id",
                "steps[0].to[0]",
                "steps[0].subject",
                "steps[0].body"
            ]
        );
        assert!(
            send("{{ input.email }}", "Hello {{ input.name }}", "Body")
                .validate(0)
                .is_empty()
        );
    }

    #[test]
    fn rendering_fills_templates_and_refuses_injection_from_input() {
        let step = send(
            "{{ input.email }}",
            "Hello {{ input.name }}",
            "Dear {{ input.name }}",
        );
        let rendered = step
            .render(0, &json!({"email": "ada@example.com", "name": "Ada"}))
            .unwrap();
        assert_eq!(
            (rendered.to[0].as_str(), rendered.subject.as_str()),
            ("ada@example.com", "Hello Ada")
        );

        let injected = step.render(
            0,
            &json!({"email": "ada@example.com", "name": "Ada\r\nBcc: x@evil.example"}),
        );
        assert_eq!(injected.unwrap_err().field, "steps[0].subject");
        let injected = step.render(
            0,
            &json!({"email": "ada@example.com\nBcc: x@evil.example", "name": "Ada"}),
        );
        assert_eq!(injected.unwrap_err().field, "steps[0].to[0]");
        let missing = step.render(0, &json!({"name": "Ada"}));
        assert_eq!(
            missing.unwrap_err().field,
            "steps[0].to[0]",
            "a missing input is an error"
        );
    }
}

#[cfg(test)]
#[path = "workflows_budget_tests.rs"]
mod budget_tests;

#[cfg(test)]
mod step_outputs {
    use super::*;
    use serde_json::json;

    /// `steps.0.message_id` (how the API document writes it) and
    /// `steps[0].message_id` read the same output.
    #[test]
    fn a_later_step_reads_an_earlier_ones_output_either_way() {
        let step = Step {
            action: Action::EmailSendSystem,
            integration_id: None,
            url: None,
            to: vec!["a@example.com".into()],
            cc: vec![],
            bcc: vec![],
            subject: "{{ steps.0.message_id }} {{ steps[0].message_id }}".into(),
            body: "b".into(),
            condition: None,
            thread_id: None,
            label: None,
            message_id: None,
        };
        let outputs = [json!({"message_id": "m1"})];
        let deadline = Instant::now() + RENDER_TIME_LIMIT;
        let rendered = step.render_after(1, &json!({}), &outputs, deadline);
        assert_eq!(rendered.unwrap().subject, "m1 m1");
    }
}
