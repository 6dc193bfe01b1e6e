//! The served OpenAPI document is something clients can use: the reference
//! validator accepts it, a common generator (openapi-python-client) makes a
//! client from it, and that client calls the running API with an API key.
//!
//! The Python tools are installed by scripts/install-test-tools.sh (as
//! .ci/run does); without them this test fails saying so.

mod common;

use std::process::{Command, Output};

use serde_json::Value;

const INSTALL_HINT: &str = "run scripts/install-test-tools.sh (as .ci/run does)";

/// Run a command to its end off the async runtime (the server under test
/// runs on it).
async fn run(mut command: Command, what: &'static str) -> Output {
    tokio::task::spawn_blocking(move || {
        command
            .output()
            .unwrap_or_else(|error| panic!("{what} cannot start ({error}): {INSTALL_HINT}"))
    })
    .await
    .expect("the command's thread does not panic")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Fail (never skip) when the Python tools are not there.
async fn require_python_tools() {
    let mut command = Command::new("python3");
    command.args([
        "-c",
        "import openapi_spec_validator, openapi_python_client, httpx, attrs",
    ]);
    let output = run(command, "python3").await;
    assert!(
        output.status.success(),
        "the Python tools openapi-spec-validator and openapi-python-client are missing: {INSTALL_HINT}\n{}",
        text(&output.stderr)
    );
}

/// Uses the generated client the way a client's developer would.
const CLIENT_SCRIPT: &str = r#"
import json
import sys

sys.path.insert(0, sys.argv[1])
base_url, key = sys.argv[2], sys.argv[3]

from mailwright_client import AuthenticatedClient
from mailwright_client.api.identity import me
from mailwright_client.api.workflows import get_workflow, list_workflows
from mailwright_client.models import Me, Problem, WorkflowList, WorkflowView

with AuthenticatedClient(base_url=base_url, token=key, raise_on_unexpected_status=True) as client:
    who = me.sync(client=client)
    assert isinstance(who, Me), f"GET /api/me gave {who!r}"
    listed = list_workflows.sync(client=client)
    assert isinstance(listed, WorkflowList), f"GET /api/workflows gave {listed!r}"
    assert listed.workflows, "no workflow listed"
    first = get_workflow.sync(id=listed.workflows[0].id, client=client)
    assert isinstance(first, WorkflowView), f"GET /api/workflows/{{id}} gave {first!r}"
    missing = get_workflow.sync_detailed(id="no-such-workflow", client=client)
    assert missing.status_code == 404, missing
    assert isinstance(missing.parsed, Problem), missing.parsed

with AuthenticatedClient(base_url=base_url, token="mw_not_a_key", raise_on_unexpected_status=True) as client:
    refused = me.sync_detailed(client=client)
    assert refused.status_code == 401, refused
    assert isinstance(refused.parsed, Problem), refused.parsed

print(json.dumps({
    "me": who.to_dict(),
    "workflows": [workflow.to_dict() for workflow in listed.workflows],
    "first": first.to_dict(),
    "missing": missing.parsed.to_dict(),
    "refused": refused.parsed.to_dict(),
}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_python_client_calls_the_api_with_an_api_key() {
    require_python_tools().await;
    let app = common::spawn_app().await;
    let tenant = app.tenant("clients").await;
    let work = tempfile::tempdir().unwrap();

    // The document exactly as served, on disk (both tools read files).
    let response = app.get("/api/openapi.json").await;
    assert_eq!(response.status(), 200);
    let document = response.text().await.unwrap();
    let spec = work.path().join("openapi.json");
    std::fs::write(&spec, &document).unwrap();

    // (a) The reference validator, as OpenAPI 3.1.
    let mut validate = Command::new("python3");
    validate
        .args(["-m", "openapi_spec_validator", "--schema", "3.1"])
        .arg(&spec);
    let output = run(validate, "openapi-spec-validator").await;
    assert!(
        output.status.success() && text(&output.stdout).contains("OK"),
        "openapi-spec-validator rejects the document:\n{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );

    // (b) A client generated from it, treating any generator warning as a failure.
    let package = work.path().join("mailwright_client");
    let mut generate = Command::new("python3");
    generate
        .args(["-m", "openapi_python_client", "generate", "--path"])
        .arg(&spec)
        .arg("--output-path")
        .arg(&package)
        .args(["--meta", "none", "--fail-on-warning"]);
    let output = run(generate, "openapi-python-client").await;
    assert!(
        output.status.success() && package.join("api").is_dir(),
        "openapi-python-client cannot generate a client:\n{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    for module in ["api/identity/me.py", "api/workflows/list_workflows.py"] {
        assert!(package.join(module).is_file(), "{module} was not generated");
    }

    // (c) The client, calling the running API.
    let script = work.path().join("use_client.py");
    std::fs::write(&script, CLIENT_SCRIPT).unwrap();
    let mut call = Command::new("python3");
    call.arg(&script)
        .arg(work.path())
        .arg(&app.address)
        .arg(&tenant.key);
    let output = run(call, "python3").await;
    assert!(
        output.status.success(),
        "the generated client failed:\n{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let answers: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "the client script printed no JSON ({error}):\n{}",
            text(&output.stdout)
        )
    });

    assert_eq!(
        answers["me"]["user_id"],
        tenant.user.to_string(),
        "{answers}"
    );
    assert_eq!(
        answers["me"]["workspace_id"],
        tenant.workspace.to_string(),
        "{answers}"
    );
    assert_eq!(answers["me"]["email"], "owner@clients.example", "{answers}");
    let workflows = answers["workflows"].as_array().unwrap();
    assert_eq!(workflows.len(), 1, "{answers}");
    assert_eq!(workflows[0]["id"], tenant.workflow_id.as_str());
    assert_eq!(workflows[0]["name"], "clients workflow");
    assert_eq!(workflows[0]["trigger"]["type"], "manual");
    assert_eq!(answers["first"]["id"], tenant.workflow_id.as_str());
    assert_eq!(answers["missing"]["status"], 404, "{answers}");
    assert_eq!(answers["missing"]["code"], "not_found", "{answers}");
    assert_eq!(answers["refused"]["status"], 401, "{answers}");
    assert_eq!(answers["refused"]["code"], "unauthorized", "{answers}");
    assert_eq!(answers["refused"]["reason"], "unknown_api_key", "{answers}");
    assert!(
        !answers.to_string().contains(&tenant.key),
        "no answer echoes the key"
    );

    app.stop().await.unwrap();
}
