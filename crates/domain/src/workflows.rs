//! Workflow definitions and their rules: a trigger and ordered steps whose
//! string fields are templates over `{{ input.* }}`. Parsed and validated at
//! the edge (every problem named by field); rendered at run time, where a
//! rendered header field with CR or LF (header injection) fails the run.

use minijinja::Environment;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::GmailSendEmail => "gmail.send_email",
            Action::GmailCreateDraft => "gmail.create_draft",
            Action::EmailSendSystem => "email.send_system",
        }
    }

    pub fn parse(text: &str) -> Option<Action> {
        match text {
            "gmail.send_email" => Some(Action::GmailSendEmail),
            "gmail.create_draft" => Some(Action::GmailCreateDraft),
            "email.send_system" => Some(Action::EmailSendSystem),
            _ => None,
        }
    }

    pub fn uses_gmail(self) -> bool {
        matches!(self, Action::GmailSendEmail | Action::GmailCreateDraft)
    }
}

/// One step, as stored: every string a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<String>,
    pub to: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bcc: Vec<String>,
    pub subject: String,
    pub body: String,
}

/// A field that is wrong, and why (for `validation_failed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        message: message.into(),
    }
}

fn environment() -> Environment<'static> {
    let mut environment = Environment::new();
    // A missing input is an error, not an empty string sent to someone.
    environment.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    environment
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
    /// template parses, literal addresses are addresses, and no header field
    /// holds a line break.
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
        if self.to.is_empty() {
            problems.push(invalid(at("to"), "needs at least one address"));
        }
        let environment = environment();
        for (name, list) in [("to", &self.to), ("cc", &self.cc), ("bcc", &self.bcc)] {
            for (position, address) in list.iter().enumerate() {
                let field = at(&format!("{name}[{position}]"));
                if address.contains(['\r', '\n']) {
                    problems.push(invalid(field, "must not contain a line break"));
                } else if has_template(address) {
                    if let Err(error) = environment.template_from_str(address) {
                        problems.push(invalid(
                            field,
                            format!("is not a valid template ({})", error.kind()),
                        ));
                    }
                } else if let Err(problem) = valid_address(address) {
                    problems.push(invalid(field, problem));
                }
            }
        }
        if self.subject.contains(['\r', '\n']) {
            problems.push(invalid(at("subject"), "must not contain a line break"));
        } else if self.subject.trim().is_empty() {
            problems.push(invalid(at("subject"), "is required"));
        }
        for (name, text) in [("subject", &self.subject), ("body", &self.body)] {
            if let Err(error) = environment.template_from_str(text) {
                problems.push(invalid(
                    at(name),
                    format!("is not a valid template ({})", error.kind()),
                ));
            }
        }
        problems
    }

    /// The step with its templates filled from `input`, checked again: a
    /// rendered header field with a line break is refused, never sanitised.
    pub fn render(&self, index: usize, input: &Value) -> Result<RenderedStep, Invalid> {
        let at = |field: &str| format!("steps[{index}].{field}");
        let environment = environment();
        let context = minijinja::context! { input => minijinja::Value::from_serialize(input) };
        let render = |field: String, text: &str| {
            environment.render_str(text, &context).map_err(|error| {
                invalid(
                    field,
                    format!("could not be filled from the input ({})", error.kind()),
                )
            })
        };
        let addresses = |name: &str, list: &[String]| -> Result<Vec<String>, Invalid> {
            list.iter()
                .enumerate()
                .map(|(position, template)| {
                    let field = at(&format!("{name}[{position}]"));
                    let value = render(field.clone(), template)?;
                    valid_address(value.trim()).map_err(|problem| invalid(field, problem))?;
                    Ok(value.trim().to_owned())
                })
                .collect()
        };
        let subject = render(at("subject"), &self.subject)?;
        if subject.contains(['\r', '\n']) {
            return Err(invalid(at("subject"), "must not contain a line break"));
        }
        Ok(RenderedStep {
            action: self.action,
            integration_id: self.integration_id.clone(),
            to: addresses("to", &self.to)?,
            cc: addresses("cc", &self.cc)?,
            bcc: addresses("bcc", &self.bcc)?,
            subject,
            body: render(at("body"), &self.body)?,
        })
    }
}

/// A step ready to execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedStep {
    pub action: Action,
    pub integration_id: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub subject: String,
    pub body: String,
}

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
        }
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
