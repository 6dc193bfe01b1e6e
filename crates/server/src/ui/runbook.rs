//! `GET /runbook`: `docs/runbook.md`, built into the binary and served as a
//! page, so it is there offline and matches the running version. Every
//! entry is a `### code` heading and becomes the anchor `#code`: problem
//! `type` URIs (`/runbook#needs_reauth`), notice emails and
//! `mailwright doctor` link to it.

use std::sync::OnceLock;

use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use pulldown_cmark::{Options, Parser, html};

use super::render;
use crate::http::ApiError;

/// The runbook's source.
pub const SOURCE: &str = include_str!("../../../../docs/runbook.md");

/// The ids of the runbook's entries (its `### ` headings), in order.
pub fn entries() -> Vec<&'static str> {
    SOURCE
        .lines()
        .filter_map(|line| line.strip_prefix("### "))
        .map(str::trim)
        .collect()
}

/// The runbook as HTML, each entry heading carrying its id.
fn body() -> &'static str {
    static BODY: OnceLock<String> = OnceLock::new();
    BODY.get_or_init(|| {
        let marked: String = SOURCE
            .lines()
            .map(|line| match line.strip_prefix("### ") {
                Some(entry) => format!("### {entry} {{#{}}}\n", entry.trim()),
                None => format!("{line}\n"),
            })
            .collect();
        let mut rendered = String::new();
        html::push_html(
            &mut rendered,
            Parser::new_ext(&marked, Options::ENABLE_HEADING_ATTRIBUTES),
        );
        rendered
    })
}

/// The runbook: what each problem code and connection status means, what
/// the person does and what the operator checks.
#[utoipa::path(get, path = "/runbook", tag = "ui",
    responses((status = 200, content_type = "text/html")))]
pub(super) async fn runbook_page() -> Result<Response, ApiError> {
    render(
        StatusCode::OK,
        "runbook.html",
        context! { body => minijinja::Value::from_safe_string(body().to_owned()) },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_entry_heading_becomes_its_anchor() {
        let entries = entries();
        assert!(!entries.is_empty());
        for entry in entries {
            assert!(
                body().contains(&format!("id=\"{entry}\"")),
                "no anchor for {entry}"
            );
        }
    }
}
