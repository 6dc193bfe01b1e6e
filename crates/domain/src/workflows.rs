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

/// How a run starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Trigger {
    Manual,
    Webhook,
    Schedule { cron: String },
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
        }
    }
}

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
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::GmailSendEmail => "gmail.send_email",
            Action::GmailCreateDraft => "gmail.create_draft",
            Action::EmailSendSystem => "email.send_system",
            Action::HttpPost => "http.post",
        }
    }

    pub fn parse(text: &str) -> Option<Action> {
        match text {
            "gmail.send_email" => Some(Action::GmailSendEmail),
            "gmail.create_draft" => Some(Action::GmailCreateDraft),
            "email.send_system" => Some(Action::EmailSendSystem),
            "http.post" => Some(Action::HttpPost),
            _ => None,
        }
    }

    pub fn uses_gmail(self) -> bool {
        matches!(self, Action::GmailSendEmail | Action::GmailCreateDraft)
    }

    /// Whether the step writes an email (recipients and a subject).
    pub fn is_email(self) -> bool {
        !matches!(self, Action::HttpPost)
    }
}

/// One step, as stored: every string a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The email's text; for `http.post`, the JSON body.
    pub body: String,
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
        match (self.action.uses_gmail(), &self.integration_id) {
            (true, None) => problems.push(invalid(
                at("integration_id"),
                "is required for Gmail actions",
            )),
            (false, Some(_)) => {
                problems.push(invalid(at("integration_id"), "is only for Gmail actions"))
            }
            _ => {}
        }
        if self.action.is_email() {
            if self.to.is_empty() {
                problems.push(invalid(at("to"), "needs at least one address"));
            }
            if self.url.is_some() {
                problems.push(invalid(at("url"), "is only for http.post"));
            }
        } else {
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
        let url = self.url.clone().unwrap_or_default();
        for (name, text) in [
            ("subject", &self.subject),
            ("body", &self.body),
            ("url", &url),
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
        })
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
        if let Trigger::Schedule { cron } = &self.trigger
            && let Err(problem) = Schedule::parse(cron)
        {
            problems.push(invalid("trigger.cron", problem));
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
