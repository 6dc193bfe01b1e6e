//! Tests of `workflows`.
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
        next_run_at: None,
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
    };
    let input: Value = serde_json::from_str(&sample_input(&workflow)).unwrap();
    assert_eq!(input, json!({"email": "", "name": "", "order": ""}));
    let (form, simple) = stored_form(&workflow);
    assert!(simple);
    assert_eq!(
        (form.trigger.as_str(), form.to.as_str()),
        ("manual", "{{ input.email }}")
    );
}
