//! Every health-probe path in a shipped deployment manifest must answer 200
//! on the running application. (One seed lost two days of deploys to a probe
//! on `/health` while the app served only `/api/health`.)

mod common;

use std::path::{Path, PathBuf};

use common::spawn_app;

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Probe paths in a Kubernetes manifest: the `path:` lines inside a
/// `startupProbe`, `livenessProbe` or `readinessProbe` block (by indentation).
fn kubernetes_probe_paths(manifest: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut probe_indent: Option<usize> = None;
    for line in manifest.lines() {
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        if probe_indent.is_some_and(|probe| indent <= probe) {
            probe_indent = None;
        }
        if ["startupProbe:", "livenessProbe:", "readinessProbe:"].contains(&text) {
            probe_indent = Some(indent);
        } else if probe_indent.is_some()
            && let Some(path) = text.strip_prefix("path:")
        {
            paths.push(path.trim().trim_matches('"').trim_matches('\'').to_owned());
        }
    }
    paths
}

/// `HEALTHCHECK ... http://host:port/PATH` lines of a Dockerfile.
fn dockerfile_probe_paths(dockerfile: &str) -> Vec<String> {
    dockerfile
        .lines()
        .filter(|line| line.trim_start().starts_with("HEALTHCHECK"))
        .filter_map(|line| line.split("://").nth(1))
        .filter_map(|rest| rest.find('/').map(|slash| &rest[slash..]))
        .map(|path| {
            path.split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
                .next()
                .unwrap_or("/")
                .to_owned()
        })
        .collect()
}

/// Every manifest the repository ships, with the probe paths it names.
fn shipped_probe_paths() -> Vec<(PathBuf, String)> {
    let root = repository_root();
    let mut found = Vec::new();
    let mut visit = vec![root.join("deploy"), root.clone()];
    while let Some(dir) = visit.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let probes = if name.ends_with(".yaml") || name.ends_with(".yml") {
                kubernetes_probe_paths(&text)
            } else if name == "Dockerfile" || name.ends_with(".Dockerfile") {
                dockerfile_probe_paths(&text)
            } else {
                continue;
            };
            found.extend(probes.into_iter().map(|probe| (path.clone(), probe)));
        }
    }
    found
}

#[test]
fn probe_paths_are_read_from_manifests() {
    let manifest = "spec:\n  livenessProbe:\n    httpGet:\n      path: /health\n  ports:\n    - path: /not-a-probe\n  readinessProbe:\n    httpGet:\n      path: \"/api/ready\"\n";
    assert_eq!(kubernetes_probe_paths(manifest), ["/health", "/api/ready"]);
    let dockerfile =
        "FROM x\nHEALTHCHECK CMD curl -fsS http://127.0.0.1:8080/api/health || exit 1\n";
    assert_eq!(dockerfile_probe_paths(dockerfile), ["/api/health"]);
}

#[tokio::test]
async fn every_shipped_probe_path_answers_200() {
    let probes = shipped_probe_paths();
    assert!(
        probes.len() >= 3,
        "deploy/kubernetes.yaml ships startup, liveness and readiness probes; found {probes:?}"
    );
    let app = spawn_app().await;
    for (manifest, path) in probes {
        let status = app.get(&path).await.status();
        assert_eq!(
            status,
            200,
            "{} probes {path}, which answers {status}",
            manifest.display()
        );
    }
}
