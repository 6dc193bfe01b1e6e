//! The workflow form: the trigger and every step as fields (steps added,
//! removed and moved by the form's own buttons, so it works without
//! scripts), or the Advanced JSON; turned into a definition, its refusals
//! shown next to the fields they concern, and the form filled from a stored
//! workflow.

use std::collections::BTreeMap;

use domain::workflows::{Action, Definition, MAX_STEPS, MailFilter, Step, Trigger};
use minijinja::context;
use serde::Deserialize;
use serde_json::{Value, json};

use super::session::SessionForm;
use crate::app::AppState;
use crate::auth::SessionUser;
use crate::http::json::parse;
use crate::http::workflows::WorkflowInput;
use crate::http::{ApiError, FieldError};
use engine::workflows::Workflow;

/// One step's fields as the form holds them (`steps[0].to` and so on):
/// text, whatever the action; [`form_definition`] keeps those the action
/// takes.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub(super) struct StepFields {
    pub(super) action: String,
    pub(super) integration_id: String,
    pub(super) to: String,
    pub(super) cc: String,
    pub(super) bcc: String,
    pub(super) subject: String,
    pub(super) body: String,
    pub(super) url: String,
    pub(super) label: String,
    pub(super) thread_id: String,
    pub(super) message_id: String,
    pub(super) condition: String,
}

impl StepFields {
    fn set(&mut self, field: &str, value: String) {
        let slot = match field {
            "action" => &mut self.action,
            "integration_id" => &mut self.integration_id,
            "to" => &mut self.to,
            "cc" => &mut self.cc,
            "bcc" => &mut self.bcc,
            "subject" => &mut self.subject,
            "body" => &mut self.body,
            "url" => &mut self.url,
            "label" => &mut self.label,
            "thread_id" => &mut self.thread_id,
            "message_id" => &mut self.message_id,
            "condition" => &mut self.condition,
            _ => return,
        };
        *slot = value;
    }

    fn of(step: &Step) -> StepFields {
        StepFields {
            action: step.action.as_str().into(),
            integration_id: step.integration_id.clone().unwrap_or_default(),
            to: step.to.join(", "),
            cc: step.cc.join(", "),
            bcc: step.bcc.join(", "),
            subject: step.subject.clone(),
            body: step.body.clone(),
            url: step.url.clone().unwrap_or_default(),
            label: step.label.clone().unwrap_or_default(),
            thread_id: step.thread_id.clone().unwrap_or_default(),
            message_id: step.message_id.clone().unwrap_or_default(),
            condition: step.condition.clone().unwrap_or_default(),
        }
    }
}

/// What the form posts, as fields: the named ones, and each step's
/// `steps[<n>].<field>`.
#[derive(Debug, Default, Deserialize)]
struct PostedFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    op: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    notify_on_failure: Option<String>,
    #[serde(default)]
    trigger: String,
    #[serde(default)]
    cron: String,
    #[serde(default)]
    trigger_integration_id: String,
    #[serde(default)]
    filter_from: String,
    #[serde(default)]
    filter_to: String,
    #[serde(default)]
    filter_subject_contains: String,
    #[serde(default)]
    filter_has_attachment: String,
    #[serde(default)]
    filter_label: String,
    #[serde(default)]
    json: String,
    #[serde(flatten)]
    rest: BTreeMap<String, String>,
}

/// What the workflow forms send: the fields of the trigger and of each
/// step, or (`mode=json`, the "Advanced" form) the whole definition as the
/// API takes it. `op` is a button that changes the form instead of saving
/// it: `add`, `remove-<n>`, `up-<n>`, `down-<n>`.
#[derive(Debug, Default, Deserialize)]
#[serde(from = "PostedFields")]
pub(super) struct WorkflowForm {
    csrf: String,
    mode: String,
    pub(super) op: String,
    name: String,
    enabled: Option<String>,
    notify_on_failure: Option<String>,
    pub(super) trigger: String,
    cron: String,
    trigger_integration_id: String,
    filter_from: String,
    filter_to: String,
    filter_subject_contains: String,
    filter_has_attachment: String,
    filter_label: String,
    pub(super) steps: Vec<StepFields>,
    json: String,
}

impl From<PostedFields> for WorkflowForm {
    fn from(posted: PostedFields) -> WorkflowForm {
        let mut steps: BTreeMap<usize, StepFields> = BTreeMap::new();
        for (key, value) in posted.rest {
            let Some((index, field)) = key
                .strip_prefix("steps[")
                .and_then(|rest| rest.split_once("]."))
            else {
                continue;
            };
            // At most one more than a workflow may hold: the rest is not
            // a form this page made.
            match index.parse::<usize>() {
                Ok(index) if index <= MAX_STEPS => {
                    steps.entry(index).or_default().set(field, value)
                }
                _ => {}
            }
        }
        WorkflowForm {
            csrf: posted.csrf,
            mode: posted.mode,
            op: posted.op,
            name: posted.name,
            enabled: posted.enabled,
            notify_on_failure: posted.notify_on_failure,
            trigger: posted.trigger,
            cron: posted.cron,
            trigger_integration_id: posted.trigger_integration_id,
            filter_from: posted.filter_from,
            filter_to: posted.filter_to,
            filter_subject_contains: posted.filter_subject_contains,
            filter_has_attachment: posted.filter_has_attachment,
            filter_label: posted.filter_label,
            steps: steps.into_values().collect(),
            json: posted.json,
        }
    }
}

impl SessionForm for WorkflowForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl WorkflowForm {
    pub(super) fn is_json(&self) -> bool {
        self.mode == "json"
    }

    /// Apply the button pressed (`op`) to the steps: `true` when it was one
    /// (the form is shown again, not saved).
    pub(super) fn apply_op(&mut self) -> bool {
        let (verb, index) = match self.op.split_once('-') {
            Some((verb, index)) => (verb, index.parse::<usize>().ok()),
            None => (self.op.as_str(), None),
        };
        match (verb, index) {
            ("add", _) if self.steps.len() < MAX_STEPS => {
                // A new step starts as the last one's kind, on its mailbox.
                let last = self.steps.last();
                self.steps.push(StepFields {
                    action: last.map_or("gmail.send_email".into(), |step| step.action.clone()),
                    integration_id: last
                        .map(|step| step.integration_id.clone())
                        .unwrap_or_default(),
                    ..StepFields::default()
                });
            }
            ("remove", Some(index)) if index < self.steps.len() && self.steps.len() > 1 => {
                self.steps.remove(index);
            }
            ("up", Some(index)) if index > 0 && index < self.steps.len() => {
                self.steps.swap(index - 1, index);
            }
            ("down", Some(index)) if index + 1 < self.steps.len() => {
                self.steps.swap(index, index + 1);
            }
            ("add" | "remove" | "up" | "down", _) => {}
            _ => return false,
        }
        true
    }

    pub(super) fn values(&self) -> minijinja::Value {
        let steps: Vec<minijinja::Value> = self
            .steps
            .iter()
            .enumerate()
            .map(|(index, step)| {
                context! {
                    index,
                    number => index + 1,
                    last => index + 1 == self.steps.len(),
                    ..minijinja::Value::from_serialize(step)
                }
            })
            .collect();
        context! {
            name => self.name,
            enabled => self.enabled.is_some(),
            notify_on_failure => self.notify_on_failure.is_some(),
            trigger => self.trigger,
            cron => self.cron,
            trigger_integration_id => self.trigger_integration_id,
            filter_from => self.filter_from,
            filter_to => self.filter_to,
            filter_subject_contains => self.filter_subject_contains,
            filter_has_attachment => self.filter_has_attachment,
            filter_label => self.filter_label,
            steps,
            can_add => self.steps.len() < MAX_STEPS,
            json => self.json,
        }
    }
}

/// The address fields' addresses: split at commas outside quotes and
/// outside templates, so `"Ada, L" <ada@example.com>` stays one address.
pub(super) fn split_addresses(text: &str) -> Vec<String> {
    let mut addresses = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut depth) = (false, 0usize);
    for c in text.chars() {
        match c {
            '"' if depth == 0 => quoted = !quoted,
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if !quoted && depth == 0 => {
                addresses.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    addresses.push(current);
    addresses
        .into_iter()
        .map(|address| address.trim().to_owned())
        .filter(|address| !address.is_empty())
        .collect()
}

/// A text field: `None` when left empty.
fn given(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|text| !text.is_empty())
}

/// The definition a form describes: the Advanced JSON parsed as the API
/// parses a body, or the fields (a tampered select is named). Each step
/// keeps only the fields its action takes: a field the page hid for
/// another action does not count.
pub(super) fn form_definition(form: &WorkflowForm) -> Result<Definition, ApiError> {
    if form.is_json() {
        return parse::<WorkflowInput>(form.json.as_bytes()).map(WorkflowInput::into_definition);
    }
    let mut problems = Vec::new();
    let trigger = match form.trigger.as_str() {
        "manual" => Some(Trigger::Manual),
        "webhook" => Some(Trigger::Webhook),
        "schedule" => Some(Trigger::Schedule {
            cron: form.cron.trim().to_owned(),
        }),
        "new_mail" => Some(Trigger::NewMail {
            integration_id: form.trigger_integration_id.clone(),
            filter: MailFilter {
                from: given(&form.filter_from),
                to: given(&form.filter_to),
                subject_contains: given(&form.filter_subject_contains),
                has_attachment: match form.filter_has_attachment.as_str() {
                    "yes" => Some(true),
                    "no" => Some(false),
                    _ => None,
                },
                label: given(&form.filter_label),
            },
        }),
        _ => {
            problems.push(FieldError::new(
                "trigger",
                "must be manual, webhook, schedule or new_mail",
            ));
            None
        }
    };
    let mut steps = Vec::new();
    for (index, fields) in form.steps.iter().enumerate() {
        let Some(action) = Action::parse(&fields.action) else {
            problems.push(FieldError::new(
                format!("steps[{index}].action"),
                "is not an action Mailwright has",
            ));
            continue;
        };
        let addresses = |text: &str| {
            if action.takes_addresses() {
                split_addresses(text)
            } else {
                Vec::new()
            }
        };
        let only = |used: bool, text: &str| used.then(|| given(text)).flatten();
        steps.push(Step {
            action,
            integration_id: only(action.uses_gmail(), &fields.integration_id),
            to: addresses(&fields.to),
            cc: addresses(&fields.cc),
            bcc: addresses(&fields.bcc),
            subject: if action.takes_addresses() {
                fields.subject.trim().to_owned()
            } else {
                String::new()
            },
            // Browsers send CRLF; the email is written with LF.
            body: if action.is_label() {
                String::new()
            } else {
                fields.body.replace("\r\n", "\n")
            },
            url: only(action == Action::HttpPost, &fields.url),
            label: only(action.is_label(), &fields.label),
            thread_id: only(action == Action::GmailReply, &fields.thread_id),
            message_id: only(action.is_label(), &fields.message_id),
            condition: given(&fields.condition),
        });
    }
    let Some(trigger) = trigger.filter(|_| problems.is_empty()) else {
        return Err(ApiError::Validation(problems));
    };
    Ok(Definition {
        name: form.name.clone(),
        enabled: form.enabled.is_some(),
        notify_on_failure: form.notify_on_failure.is_some(),
        trigger,
        steps,
    })
}

/// Messages by form field (`form` for those no field shows).
pub(super) type FieldMessages = BTreeMap<String, Vec<String>>;

/// The form field an API field path is about (`steps[0].to[1]` is about
/// `steps[0].to`), and how to name it.
pub(super) fn form_field(path: &str) -> (String, &'static str) {
    let named = |key: &str, label| (key.to_owned(), label);
    match path {
        "name" => named("name", "Name"),
        "trigger.cron" => named("cron", "Cron"),
        "trigger.integration_id" => named("trigger_integration_id", "Mailbox:"),
        "trigger.filter.from" => named("filter_from", "From"),
        "trigger.filter.to" => named("filter_to", "To"),
        "trigger.filter.subject_contains" => named("filter_subject_contains", "Subject contains"),
        "trigger.filter.label" => named("filter_label", "Label"),
        path if path.starts_with("trigger") => named("trigger", "Trigger"),
        path => {
            let Some((step, field)) = path
                .strip_prefix("steps[")
                .and_then(|rest| rest.split_once("]."))
            else {
                return named("form", "");
            };
            let field = field.split('[').next().unwrap_or(field);
            let label = match field {
                "action" => "Action",
                "integration_id" => "Mailbox",
                "to" => "To",
                "cc" => "Cc",
                "bcc" => "Bcc",
                "subject" => "Subject",
                "body" => "Body",
                "url" => "URL",
                "label" => "Label",
                "thread_id" => "Thread id",
                "message_id" => "Message id",
                "condition" => "Condition",
                _ => return named("form", ""),
            };
            (format!("steps[{step}].{field}"), label)
        }
    }
}

/// The refused form's messages, each by its field. Anything but a refused
/// definition is not the form's business and is answered as an error.
pub(super) fn form_messages(
    form: &WorkflowForm,
    error: ApiError,
) -> Result<FieldMessages, ApiError> {
    let errors = match error {
        ApiError::Validation(errors) => errors,
        ApiError::MalformedBody(detail) => vec![FieldError::new("body", detail)],
        // The trigger's mailbox could not be read when the workflow was
        // saved: said next to the mailbox, with everything typed kept.
        ApiError::Conflict(detail)
        | ApiError::MissingScopes { detail, .. }
        | ApiError::NeedsReauth { detail, .. }
        | ApiError::ProviderError(detail)
        | ApiError::ProviderUnavailable(detail) => {
            vec![FieldError::new("trigger.integration_id", detail)]
        }
        other => return Err(other),
    };
    let mut messages = FieldMessages::new();
    if form.is_json() {
        for FieldError { field, message } in errors {
            let text = if field == "body" {
                message
            } else {
                format!("{field}: {message}")
            };
            messages.entry("json".into()).or_default().push(text);
        }
        return Ok(messages);
    }
    for FieldError { field, message } in errors {
        let (key, label) = form_field(&field);
        // `steps[0].to[2]`: say which address.
        let address = field.split_once("].").and_then(|(step, rest)| {
            let step = step.strip_prefix("steps[")?.parse::<usize>().ok()?;
            let (name, position) = rest.split_once('[')?;
            let position = position.strip_suffix(']')?.parse::<usize>().ok()?;
            let fields = form.steps.get(step)?;
            let text = match name {
                "to" => &fields.to,
                "cc" => &fields.cc,
                "bcc" => &fields.bcc,
                _ => return None,
            };
            split_addresses(text).into_iter().nth(position)
        });
        let text = match (address, key.as_str()) {
            (Some(address), _) => format!("{label}: {address} {message}"),
            (None, "form") => domain::workflows::Invalid::new(field, message).in_words(),
            (None, _) => format!("{label} {message}"),
        };
        messages.entry(key).or_default().push(text);
    }
    Ok(messages)
}

/// The workspace's mailbox connections for the select, keeping `selected`
/// listed even when it no longer exists (so an edit does not silently switch).
pub(super) async fn mailbox_options(
    state: &AppState,
    session: &SessionUser,
    selected: &str,
) -> Result<Vec<(String, String)>, ApiError> {
    let mut options: Vec<(String, String)> = state
        .connections
        .list(session.workspace)
        .await?
        .into_iter()
        .filter(|integration| integration.integration_type.is_mailbox())
        .map(|integration| {
            let label = match integration.status {
                domain::scopes::IntegrationStatus::Connected => integration.email,
                status => format!(
                    "{} ({})",
                    integration.email,
                    status.as_str().replace('_', " ")
                ),
            };
            (integration.id.to_string(), label)
        })
        .collect();
    if !selected.is_empty() && !options.iter().any(|(id, _)| id == selected) {
        options.push((
            selected.to_owned(),
            "a connection that no longer exists".into(),
        ));
    }
    Ok(options)
}

/// The values of the workflow form (and its Advanced JSON) for the template.
pub(super) async fn editor(
    state: &AppState,
    session: &SessionUser,
    form: &WorkflowForm,
    messages: FieldMessages,
    simple: bool,
    action: String,
) -> Result<minijinja::Value, ApiError> {
    // Every connection a step or the trigger names stays listed.
    let mut options = mailbox_options(state, session, &form.trigger_integration_id).await?;
    for step in &form.steps {
        let id = &step.integration_id;
        if !id.is_empty() && !options.iter().any(|(known, _)| known == id) {
            options.push((id.clone(), "a connection that no longer exists".into()));
        }
    }
    let mailbox_integrations: Vec<minijinja::Value> = options
        .into_iter()
        .map(|(id, label)| context! { id, label })
        .collect();
    let actions: Vec<minijinja::Value> = Action::ALL
        .iter()
        .map(|action| context! { value => action.as_str(), words => action.describe() })
        .collect();
    Ok(context! {
        form => form.values(),
        field_errors => minijinja::Value::from_serialize(&messages),
        advanced_open => form.is_json(),
        mailbox_integrations,
        actions,
        simple,
        form_action => action,
    })
}

pub(super) fn definition_json(definition: &Value) -> String {
    serde_json::to_string_pretty(definition).unwrap_or_default()
}

/// A new workflow's form: the common case preselected, and a sample
/// definition in the Advanced box.
pub(super) async fn blank_form(
    state: &AppState,
    session: &SessionUser,
) -> Result<WorkflowForm, ApiError> {
    let gmail = mailbox_options(state, session, "").await?;
    let step = match gmail.first() {
        Some((id, _)) => json!({"action": "gmail.send_email", "integration_id": id,
            "to": ["{{ input.email }}"], "subject": "Your order {{ input.order }} shipped",
            "body": "Hello {{ input.name }},\n\nyour order {{ input.order }} is on its way."}),
        None => json!({"action": "email.send_system", "to": ["ops@example.com"],
            "subject": "New order {{ input.order }}", "body": "{{ input.name }} ordered."}),
    };
    let mailbox = gmail.first().map(|(id, _)| id.clone()).unwrap_or_default();
    Ok(WorkflowForm {
        enabled: Some("on".into()),
        trigger: "manual".into(),
        trigger_integration_id: mailbox.clone(),
        steps: vec![StepFields {
            action: step["action"].as_str().unwrap_or_default().to_owned(),
            integration_id: mailbox,
            ..StepFields::default()
        }],
        json: definition_json(
            &json!({"name": "Order shipped", "trigger": {"type": "manual"}, "steps": [step]}),
        ),
        ..WorkflowForm::default()
    })
}

/// The stored workflow in the form; `false` when the form cannot show it
/// (an unreadable trigger or steps), which is then edited as JSON only.
pub(super) fn stored_form(workflow: &Workflow) -> (WorkflowForm, bool) {
    let mut form = WorkflowForm {
        name: workflow.name.clone(),
        enabled: workflow.enabled.then(|| "on".into()),
        notify_on_failure: workflow.notify_on_failure.then(|| "on".into()),
        json: definition_json(&json!({
            "name": workflow.name,
            "enabled": workflow.enabled,
            "notify_on_failure": workflow.notify_on_failure,
            "trigger": workflow.trigger,
            "steps": workflow.steps,
        })),
        ..WorkflowForm::default()
    };
    match serde_json::from_value::<Trigger>(workflow.trigger.clone()) {
        Ok(Trigger::Schedule { cron }) => {
            form.trigger = "schedule".into();
            form.cron = cron;
        }
        Ok(Trigger::NewMail {
            integration_id,
            filter,
        }) => {
            form.trigger = "new_mail".into();
            form.trigger_integration_id = integration_id;
            form.filter_from = filter.from.unwrap_or_default();
            form.filter_to = filter.to.unwrap_or_default();
            form.filter_subject_contains = filter.subject_contains.unwrap_or_default();
            form.filter_has_attachment = match filter.has_attachment {
                Some(true) => "yes".into(),
                Some(false) => "no".into(),
                None => String::new(),
            };
            form.filter_label = filter.label.unwrap_or_default();
        }
        Ok(other) => form.trigger = other.kind().into(),
        Err(_) => return (form, false),
    }
    match serde_json::from_value::<Vec<Step>>(workflow.steps.clone()) {
        Ok(steps) if !steps.is_empty() => {
            form.steps = steps.iter().map(StepFields::of).collect();
            (form, true)
        }
        _ => (form, false),
    }
}

/// A refused form as sent, with the other form (fields or JSON) as it was
/// before, so neither comes back empty.
pub(super) fn keep_other_form(refused: WorkflowForm, before: WorkflowForm) -> WorkflowForm {
    if refused.is_json() {
        WorkflowForm {
            mode: refused.mode,
            json: refused.json,
            ..before
        }
    } else {
        WorkflowForm {
            json: before.json,
            ..refused
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split_at_commas_outside_quotes_and_templates() {
        assert_eq!(
            split_addresses(
                r#" ada@example.com, "Ada, L" <ada@example.com>,{{ input.to | default("a, b") }} ,"#
            ),
            [
                "ada@example.com",
                r#""Ada, L" <ada@example.com>"#,
                r#"{{ input.to | default("a, b") }}"#
            ]
        );
        assert!(split_addresses(" , ").is_empty());
    }

    #[test]
    fn api_fields_land_next_to_form_fields() {
        let form = WorkflowForm {
            steps: vec![StepFields {
                to: "ok@example.com, bob".into(),
                ..StepFields::default()
            }],
            ..WorkflowForm::default()
        };
        let error = ApiError::Validation(vec![
            FieldError::new("name", "must be 1 to 100 characters"),
            FieldError::new("steps[0].to[1]", "is not an address"),
            FieldError::new("trigger.cron", "is not a cron expression"),
            FieldError::new("trigger.filter.from", "must be an address"),
            FieldError::new("steps", "must hold 1 to 20 steps"),
            FieldError::new("steps[0].label", "is required"),
        ]);
        let messages = form_messages(&form, error).unwrap();
        assert_eq!(messages["name"], ["Name must be 1 to 100 characters"]);
        assert_eq!(messages["steps[0].to"], ["To: bob is not an address"]);
        assert_eq!(messages["cron"], ["Cron is not a cron expression"]);
        assert_eq!(messages["filter_from"], ["From must be an address"]);
        assert_eq!(messages["form"], ["steps must hold 1 to 20 steps"]);
        assert_eq!(messages["steps[0].label"], ["Label is required"]);

        let json = WorkflowForm {
            mode: "json".into(),
            ..WorkflowForm::default()
        };
        let messages = form_messages(
            &json,
            ApiError::Validation(vec![FieldError::new("steps[1].to[0]", "is not an address")]),
        )
        .unwrap();
        assert_eq!(messages["json"], ["steps[1].to[0]: is not an address"]);
        assert!(form_messages(&json, ApiError::NotFound).is_err());
    }

    fn posted(body: &str) -> WorkflowForm {
        serde_urlencoded::from_str(body).unwrap()
    }

    #[test]
    fn steps_come_from_their_numbered_fields_and_keep_only_what_their_action_takes() {
        let form = posted(
            "name=N&trigger=new_mail&trigger_integration_id=i&filter_from=*%40example.com&filter_has_attachment=yes\
             &steps%5B1%5D.action=gmail.add_label&steps%5B1%5D.integration_id=i&steps%5B1%5D.label=Invoices\
             &steps%5B1%5D.to=hidden%40example.com&steps%5B1%5D.body=hidden\
             &steps%5B0%5D.action=http.post&steps%5B0%5D.url=https%3A%2F%2Fx.example&steps%5B0%5D.body=%7B%7D\
             &steps%5B0%5D.integration_id=i&steps%5B99%5D.action=gmail.reply",
        );
        let definition = form_definition(&form).unwrap();
        assert_eq!(definition.steps.len(), 2);
        assert_eq!(definition.steps[0].action, Action::HttpPost);
        assert_eq!(definition.steps[0].integration_id, None);
        assert_eq!(definition.steps[1].label.as_deref(), Some("Invoices"));
        assert!(definition.steps[1].to.is_empty() && definition.steps[1].body.is_empty());
        let Trigger::NewMail { filter, .. } = &definition.trigger else {
            panic!("{:?}", definition.trigger);
        };
        assert_eq!(filter.from.as_deref(), Some("*@example.com"));
        assert_eq!(filter.has_attachment, Some(true));
    }

    #[test]
    fn buttons_add_remove_and_move_steps() {
        let mut form =
            posted("steps%5B0%5D.action=http.post&steps%5B1%5D.action=gmail.reply&op=up-1");
        assert!(form.apply_op());
        assert_eq!(form.steps[0].action, "gmail.reply");
        form.op = "down-0".into();
        assert!(form.apply_op());
        assert_eq!(form.steps[0].action, "http.post");
        form.op = "add".into();
        assert!(form.apply_op());
        assert_eq!(form.steps.len(), 3);
        assert_eq!(form.steps[2].action, "gmail.reply");
        form.op = "remove-0".into();
        assert!(form.apply_op());
        assert_eq!(form.steps.len(), 2);
        form.op = "up-0".into();
        assert!(
            form.apply_op(),
            "a button that cannot move still only shows the form"
        );
        form.op = String::new();
        assert!(!form.apply_op());
        form.op = "remove-0".into();
        form.apply_op();
        form.op = "remove-0".into();
        form.apply_op();
        assert_eq!(form.steps.len(), 1, "the last step stays");
    }
}
