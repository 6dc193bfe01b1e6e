//! The workflow form: the one-step fields or the Advanced JSON, turned into
//! a definition, its refusals shown next to the fields they concern, and
//! the form filled from a stored workflow.

use std::collections::BTreeMap;

use domain::scopes::IntegrationType;
use domain::workflows::{Action, Definition, Step, Trigger};
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

/// What the workflow forms send: the one-step fields, or (`mode=json`, the
/// "Advanced" form) the whole definition as the API takes it.
#[derive(Debug, Default, Deserialize)]
pub(super) struct WorkflowForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    notify_on_failure: Option<String>,
    #[serde(default)]
    pub(super) trigger: String,
    #[serde(default)]
    cron: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    integration_id: String,
    #[serde(default)]
    pub(super) to: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    json: String,
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

    pub(super) fn values(&self) -> minijinja::Value {
        context! {
            name => self.name,
            enabled => self.enabled.is_some(),
            notify_on_failure => self.notify_on_failure.is_some(),
            trigger => self.trigger,
            cron => self.cron,
            action => self.action,
            integration_id => self.integration_id,
            to => self.to,
            subject => self.subject,
            body => self.body,
            json => self.json,
        }
    }
}

/// The "to" field's addresses: split at commas outside quotes and outside
/// templates, so `"Ada, L" <ada@example.com>` stays one address.
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

/// The definition a form describes: the Advanced JSON parsed as the API
/// parses a body, or the one-step fields (a tampered select is named).
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
        _ => {
            problems.push(FieldError::new(
                "trigger",
                "must be manual, webhook or schedule",
            ));
            None
        }
    };
    let action = Action::parse(&form.action);
    if action.is_none() {
        problems.push(FieldError::new(
            "steps[0].action",
            "is not an action Mailwright has",
        ));
    }
    let (Some(trigger), Some(action)) = (trigger, action) else {
        return Err(ApiError::Validation(problems));
    };
    // One select serves every action: it only counts for the Gmail ones.
    let integration_id = (action.uses_gmail() && !form.integration_id.is_empty())
        .then(|| form.integration_id.clone());
    Ok(Definition {
        name: form.name.clone(),
        enabled: form.enabled.is_some(),
        notify_on_failure: form.notify_on_failure.is_some(),
        trigger,
        steps: vec![Step {
            action,
            integration_id,
            to: split_addresses(&form.to),
            cc: Vec::new(),
            bcc: Vec::new(),
            subject: form.subject.trim().to_owned(),
            // Browsers send CRLF; the email is written with LF.
            body: form.body.replace("\r\n", "\n"),
            condition: None,
            url: None,
        }],
    })
}

/// Messages by form field (`form` for those no field shows).
pub(super) type FieldMessages = BTreeMap<&'static str, Vec<String>>;

/// The form field an API field path is about, and how to name it.
pub(super) fn form_field(path: &str) -> (&'static str, &'static str) {
    match path {
        "name" => ("name", "Name"),
        "trigger.cron" => ("cron", "Cron"),
        path if path.starts_with("trigger") => ("trigger", "Trigger"),
        path if path.starts_with("steps[0].integration_id") => {
            ("integration_id", "Gmail connection")
        }
        path if path.starts_with("steps[0].to") => ("to", "To"),
        "steps[0].subject" => ("subject", "Subject"),
        "steps[0].body" => ("body", "Body"),
        "steps[0].action" => ("action", "Action"),
        _ => ("form", ""),
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
            messages.entry("json").or_default().push(text);
        }
        return Ok(messages);
    }
    let addresses = split_addresses(&form.to);
    for FieldError { field, message } in errors {
        let (key, label) = form_field(&field);
        // `steps[0].to[2]`: say which address.
        let address = field
            .strip_prefix("steps[0].to[")
            .and_then(|rest| rest.strip_suffix(']'))
            .and_then(|position| position.parse::<usize>().ok())
            .and_then(|position| addresses.get(position));
        let text = match (address, key) {
            (Some(address), _) => format!("{label}: {address} {message}"),
            (None, "form") => format!("{field} {message}"),
            (None, _) => format!("{label} {message}"),
        };
        messages.entry(key).or_default().push(text);
    }
    Ok(messages)
}

/// The workspace's Gmail connections for the select, keeping `selected`
/// listed even when it no longer exists (so an edit does not silently switch).
pub(super) async fn gmail_options(
    state: &AppState,
    session: &SessionUser,
    selected: &str,
) -> Result<Vec<(String, String)>, ApiError> {
    let mut options: Vec<(String, String)> = state
        .connections
        .list(session.workspace)
        .await?
        .into_iter()
        .filter(|integration| integration.integration_type == IntegrationType::Gmail)
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
    let options = gmail_options(state, session, &form.integration_id).await?;
    let gmail_integrations: Vec<minijinja::Value> = options
        .into_iter()
        .map(|(id, label)| context! { id, label })
        .collect();
    Ok(context! {
        form => form.values(),
        field_errors => minijinja::Value::from_serialize(&messages),
        advanced_open => form.is_json(),
        gmail_integrations,
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
    let gmail = gmail_options(state, session, "").await?;
    let step = match gmail.first() {
        Some((id, _)) => json!({"action": "gmail.send_email", "integration_id": id,
            "to": ["{{ input.email }}"], "subject": "Your order {{ input.order }} shipped",
            "body": "Hello {{ input.name }},\n\nyour order {{ input.order }} is on its way."}),
        None => json!({"action": "email.send_system", "to": ["ops@example.com"],
            "subject": "New order {{ input.order }}", "body": "{{ input.name }} ordered."}),
    };
    Ok(WorkflowForm {
        enabled: Some("on".into()),
        trigger: "manual".into(),
        action: step["action"].as_str().unwrap_or_default().to_owned(),
        integration_id: gmail.first().map(|(id, _)| id.clone()).unwrap_or_default(),
        json: definition_json(
            &json!({"name": "Order shipped", "trigger": {"type": "manual"}, "steps": [step]}),
        ),
        ..WorkflowForm::default()
    })
}

/// The stored workflow in the form; `false` when the one-step form cannot
/// show it (several steps, cc or bcc), which is then edited as JSON only.
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
        Ok(other) => form.trigger = other.kind().into(),
        Err(_) => return (form, false),
    }
    let steps: Vec<Step> = serde_json::from_value(workflow.steps.clone()).unwrap_or_default();
    match steps.as_slice() {
        // The one-step form shows an email step without cc, bcc or a
        // condition; anything else is edited as JSON.
        [step]
            if step.cc.is_empty()
                && step.bcc.is_empty()
                && step.condition.is_none()
                && step.action.is_email() =>
        {
            form.action = step.action.as_str().into();
            form.integration_id = step.integration_id.clone().unwrap_or_default();
            form.to = step.to.join(", ");
            form.subject = step.subject.clone();
            form.body = step.body.clone();
            (form, true)
        }
        _ => (form, false),
    }
}

/// A refused form as sent, with the other form (one-step or JSON) as it was
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
            to: "ok@example.com, bob".into(),
            ..WorkflowForm::default()
        };
        let error = ApiError::Validation(vec![
            FieldError::new("name", "must be 1 to 100 characters"),
            FieldError::new("steps[0].to[1]", "is not an address"),
            FieldError::new("trigger.cron", "is not a cron expression"),
            FieldError::new("steps", "must hold 1 to 20 steps"),
        ]);
        let messages = form_messages(&form, error).unwrap();
        assert_eq!(messages["name"], ["Name must be 1 to 100 characters"]);
        assert_eq!(messages["to"], ["To: bob is not an address"]);
        assert_eq!(messages["cron"], ["Cron is not a cron expression"]);
        assert_eq!(messages["form"], ["steps must hold 1 to 20 steps"]);

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
}
