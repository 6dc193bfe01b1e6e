//! Tests of `workflows`.
use super::*;

#[test]
fn the_run_form_starts_with_the_inputs_the_templates_use() {
    let workflow = Workflow {
        id: uuid::Uuid::now_v7(),
        workspace: domain::WorkspaceId::new(),
        name: "n".into(),
        enabled: true,
        trigger: json!({"type": "manual"}),
        steps: json!([{"action": "email.send_system", "to": ["{{ input.email }}"],
            "subject": "{{input.order}} for {{ input.name }}", "body": "{{ input.name }}"}]),
        webhook_secret: None,
        notify_on_failure: false,
        next_run_at: None,
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
    };
    let input: Value = serde_json::from_str(&sample_input(&workflow)).unwrap();
    assert_eq!(input, json!({"email": "", "name": "", "order": ""}));
    let (form, simple) = stored_form(&workflow);
    assert!(simple);
    assert_eq!(
        (form.trigger.as_str(), form.steps[0].to.as_str()),
        ("manual", "{{ input.email }}")
    );
}
