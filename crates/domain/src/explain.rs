//! One explanation per connection status: what is wrong, in a sentence, and
//! what fixes it. The API, the pages, the owner's notices, auto-draft and the
//! workflow runner all say it in these words.

use crate::scopes::IntegrationStatus;

/// Where the runbook's entry for `entry` (a problem code, a connection
/// status, an alarm) is served, relative to the public URL. Problem `type`
/// URIs, notices and `mailwright doctor` link there.
pub fn runbook_path(entry: &str) -> String {
    format!("/runbook#{entry}")
}

/// A connection's status for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The status's machine name (`needs_reauth`, ...).
    pub code: &'static str,
    /// A few words for a list ("Needs reconnecting").
    pub label: &'static str,
    /// What is wrong, as a sentence (empty when nothing is).
    pub problem: String,
    /// What fixes it, as a sentence (empty when nothing needs fixing).
    pub remedy: &'static str,
}

impl Explanation {
    /// The problem and its remedy, one after the other.
    pub fn message(&self) -> String {
        match (self.problem.is_empty(), self.remedy.is_empty()) {
            (true, _) => String::new(),
            (false, true) => self.problem.clone(),
            (false, false) => format!("{} {}", self.problem, self.remedy),
        }
    }

    /// Whether reconnecting is the way out.
    pub fn needs_reconnect(&self) -> bool {
        !self.remedy.is_empty()
    }
}

/// Explain `status` of the connection to `email` (`None`: "this mailbox"),
/// which lacks `missing` scopes (only read for `missing_scopes`).
pub fn explain(status: IntegrationStatus, email: Option<&str>, missing: &[String]) -> Explanation {
    // At the start of a sentence, and inside one.
    let (subject, object) = match email {
        Some(email) => (email, email),
        None => ("This mailbox", "this mailbox"),
    };
    match status {
        IntegrationStatus::Connected => Explanation {
            code: status.as_str(),
            label: "Connected",
            problem: String::new(),
            remedy: "",
        },
        IntegrationStatus::MissingScopes => Explanation {
            code: status.as_str(),
            label: "Connected, but missing permissions",
            problem: if missing.is_empty() {
                format!("{subject} was connected without some permissions Mailwright needs.")
            } else {
                format!(
                    "{subject} was connected without permissions Mailwright needs ({}).",
                    missing.join(", ")
                )
            },
            remedy: "Reconnect it and allow them.",
        },
        IntegrationStatus::NeedsReauth => Explanation {
            code: status.as_str(),
            label: "Needs reconnecting",
            problem: format!(
                "Mailwright's access to {object} is no longer accepted (it was revoked or has expired, or the password changed)."
            ),
            remedy: "Reconnect it to resume.",
        },
        IntegrationStatus::Disconnected => Explanation {
            code: status.as_str(),
            label: "Disconnected",
            problem: format!("{subject} is disconnected."),
            remedy: "Reconnect it to use it again.",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_broken_status_says_what_is_wrong_and_what_fixes_it() {
        for status in [
            IntegrationStatus::MissingScopes,
            IntegrationStatus::NeedsReauth,
            IntegrationStatus::Disconnected,
        ] {
            let explanation = explain(status, Some("ada@example.com"), &[]);
            assert_eq!(explanation.code, status.as_str());
            assert!(explanation.problem.contains("ada@example.com"));
            assert!(explanation.needs_reconnect());
            assert!(explanation.message().ends_with('.'));
        }
        let fine = explain(IntegrationStatus::Connected, None, &[]);
        assert!(!fine.needs_reconnect() && fine.message().is_empty());
        let missing = explain(
            IntegrationStatus::MissingScopes,
            None,
            &["gmail.compose".into()],
        );
        assert_eq!(
            missing.message(),
            "This mailbox was connected without permissions Mailwright needs (gmail.compose). Reconnect it and allow them."
        );
    }
}
