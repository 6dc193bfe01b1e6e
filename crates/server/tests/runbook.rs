//! The runbook (issue "Gmail in production"): one entry per problem code
//! and per connection status, served offline by the binary at `/runbook`
//! with an anchor per entry; problem `type` URIs lead to their entry; the
//! Prometheus alert rules in `deploy/alerts.yaml` are valid (promtool),
//! name only metrics the code exports, and link to existing entries.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use domain::scopes::IntegrationStatus;
use mailwright::http::problem::ErrorCode;
use mailwright::ui::runbook;

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn every_problem_code_and_connection_status_has_an_entry_saying_what_to_do() {
    let entries = runbook::entries();
    let codes = ErrorCode::ALL.iter().map(|code| code.as_str());
    let statuses = IntegrationStatus::ALL.iter().map(|status| status.as_str());
    for wanted in codes.chain(statuses) {
        assert!(entries.contains(&wanted), "no runbook entry for `{wanted}`");
    }
    // Each entry says what it means, what the person does and what the
    // operator checks.
    let sections: Vec<&str> = runbook::SOURCE.split("\n### ").skip(1).collect();
    assert_eq!(sections.len(), entries.len());
    for section in sections {
        for part in [
            "**What it means:**",
            "**What the person does:**",
            "**What the operator checks:**",
        ] {
            assert!(
                section.contains(part),
                "`{}` lacks {part}",
                section.lines().next().unwrap_or_default()
            );
        }
    }
}

#[tokio::test]
async fn the_binary_serves_the_runbook_and_problem_types_lead_to_their_entry() {
    let app = common::spawn_app().await;
    let page = app.get("/runbook").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    for entry in runbook::entries() {
        assert!(
            html.contains(&format!("id=\"{entry}\"")),
            "no anchor {entry}"
        );
    }

    let problem: serde_json::Value = app.get("/api/workflows").await.json().await.unwrap();
    assert_eq!(problem["code"], "unauthorized");
    assert_eq!(problem["type"], "/runbook#unauthorized");
    assert!(html.contains("id=\"unauthorized\""));
}

#[test]
fn the_alert_rules_are_valid_and_name_only_real_metrics_and_entries() {
    let rules = repository_root().join("deploy/alerts.yaml");
    let output = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .expect("promtool runs (scripts/install-test-tools.sh installs Debian's prometheus, as .ci/run does)");
    assert!(
        output.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let text = std::fs::read_to_string(&rules).unwrap();
    let source = rust_sources(&repository_root().join("crates"));
    let mut metrics: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("mailwright_"))
        .collect();
    metrics.sort();
    metrics.dedup();
    assert!(!metrics.is_empty());
    for metric in metrics {
        // The exporter adds `_bucket`/`_sum`/`_count` to histograms.
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| metric.strip_suffix(suffix))
            .unwrap_or(metric);
        assert!(
            source.contains(&format!("\"{metric}\"")) || source.contains(&format!("\"{base}\"")),
            "deploy/alerts.yaml uses `{metric}`, which no crate exports"
        );
    }

    let entries = runbook::entries();
    let links: Vec<&str> = text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("runbook_url:"))
        .collect();
    assert!(!links.is_empty());
    for link in links {
        let anchor = link.trim().trim_matches('"').rsplit_once('#').unwrap().1;
        assert!(
            entries.contains(&anchor),
            "an alert links to #{anchor}, which the runbook lacks"
        );
    }
}

fn rust_sources(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name != "target") {
                text.push_str(&rust_sources(&path));
            }
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            text.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
    text
}
