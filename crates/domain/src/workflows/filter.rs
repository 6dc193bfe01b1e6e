//! The new-mail trigger's filter: which arriving messages start a run.
//! Every part given must match; an empty filter matches all inbound mail.

use serde::{Deserialize, Serialize};

use super::{Invalid, check_label};

/// Longest `from` / `to` pattern (an address is at most 254).
const MAX_PATTERN_CHARS: usize = 254;
/// Longest `subject_contains`.
const MAX_SUBJECT_CHARS: usize = 200;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailFilter {
    /// The sender's address, or a pattern with `*` (`*@example.com`);
    /// case-insensitive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Any To or Cc address, or a pattern with `*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Text the subject contains, case-insensitive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_contains: Option<String>,
    /// `true`: only messages with an attachment; `false`: only without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_attachment: Option<bool>,
    /// A label the message carries: a system label (`IMPORTANT`) or one of
    /// the mailbox's own labels by name; case-insensitive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// What a filter looks at in a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailFacts {
    /// The sender's bare address.
    pub from: String,
    /// Every To and Cc address, bare.
    pub to: Vec<String>,
    pub subject: String,
    pub has_attachment: bool,
    /// The message's labels, by id and, for the mailbox's own, by name.
    pub labels: Vec<String>,
}

impl MailFilter {
    /// Every problem, named `trigger.filter.<part>`.
    pub fn validate(&self) -> Vec<Invalid> {
        let field = |part: &str| format!("trigger.filter.{part}");
        let mut problems = Vec::new();
        for (part, pattern) in [("from", &self.from), ("to", &self.to)] {
            let Some(pattern) = pattern else { continue };
            if let Err(problem) = check_pattern(pattern) {
                problems.push(Invalid::new(field(part), problem));
            }
        }
        if let Some(text) = &self.subject_contains {
            if text.trim().is_empty() {
                problems.push(Invalid::new(
                    field("subject_contains"),
                    "must be some text, or left out",
                ));
            } else if text.contains(['\r', '\n']) {
                problems.push(Invalid::new(
                    field("subject_contains"),
                    "must not contain a line break",
                ));
            } else if text.chars().count() > MAX_SUBJECT_CHARS {
                problems.push(Invalid::new(
                    field("subject_contains"),
                    "must be at most 200 characters",
                ));
            }
        }
        if let Some(label) = &self.label
            && let Err(problem) = check_label(label)
        {
            problems.push(Invalid::new(field("label"), problem));
        }
        problems
    }

    /// Whether the message these facts describe starts a run.
    pub fn matches(&self, facts: &MailFacts) -> bool {
        let from = self
            .from
            .as_deref()
            .is_none_or(|pattern| wildcard_match(pattern, &facts.from));
        let to = self.to.as_deref().is_none_or(|pattern| {
            facts
                .to
                .iter()
                .any(|address| wildcard_match(pattern, address))
        });
        let subject = self.subject_contains.as_deref().is_none_or(|text| {
            facts
                .subject
                .to_lowercase()
                .contains(&text.trim().to_lowercase())
        });
        let attachment = self
            .has_attachment
            .is_none_or(|wanted| wanted == facts.has_attachment);
        let label = self.label.as_deref().is_none_or(|wanted| {
            facts
                .labels
                .iter()
                .any(|label| label.eq_ignore_ascii_case(wanted.trim()))
        });
        from && to && subject && attachment && label
    }

    /// The filter in words, for the workflow pages ("from *@example.com,
    /// subject contains “invoice”"); "any new mail" when empty.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(from) = &self.from {
            parts.push(format!("from {from}"));
        }
        if let Some(to) = &self.to {
            parts.push(format!("to {to}"));
        }
        if let Some(text) = &self.subject_contains {
            parts.push(format!("subject contains “{text}”"));
        }
        match self.has_attachment {
            Some(true) => parts.push("with an attachment".into()),
            Some(false) => parts.push("without attachments".into()),
            None => {}
        }
        if let Some(label) = &self.label {
            parts.push(format!("labelled {label}"));
        }
        if parts.is_empty() {
            "any new mail".into()
        } else {
            parts.join(", ")
        }
    }
}

/// An address, or a pattern with `*` that has an `@` (`*@example.com`,
/// `billing+*@example.com`).
fn check_pattern(pattern: &str) -> Result<(), &'static str> {
    let pattern = pattern.trim();
    if pattern.is_empty()
        || pattern.chars().count() > MAX_PATTERN_CHARS
        || !pattern.contains('@')
        || pattern
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | '"'))
    {
        return Err("must be an address or a pattern with *, such as *@example.com");
    }
    Ok(())
}

/// `*` matches any run of characters; case-insensitive; the whole address.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.trim().to_lowercase().chars().collect();
    let text: Vec<char> = text.trim().to_lowercase().chars().collect();
    // Greedy match with backtracking to the last star: linear in practice,
    // and both sides are at most a few hundred characters.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(from: &str, subject: &str) -> MailFacts {
        MailFacts {
            from: from.into(),
            to: vec!["me@example.org".into()],
            subject: subject.into(),
            has_attachment: false,
            labels: vec!["INBOX".into(), "Label_1".into(), "Invoices".into()],
        }
    }

    #[test]
    fn patterns_match_whole_addresses_case_insensitively() {
        assert!(wildcard_match("*@example.com", "Billing@Example.com"));
        assert!(wildcard_match(
            "billing+*@example.com",
            "billing+7@example.com"
        ));
        assert!(!wildcard_match("*@example.com", "x@example.com.evil.test"));
        assert!(!wildcard_match("*@example.com", "x@sub.example.org"));
        assert!(wildcard_match("*@*.example.com", "x@eu.example.com"));
        assert!(wildcard_match("ada@example.com", "ADA@example.com"));
        assert!(!wildcard_match("ada@example.com", "ada@example.co"));
    }

    #[test]
    fn every_part_given_must_match() {
        let filter = MailFilter {
            from: Some("*@example.com".into()),
            subject_contains: Some("Invoice".into()),
            ..MailFilter::default()
        };
        assert!(filter.matches(&facts("a@example.com", "Your invoice #12")));
        assert!(!filter.matches(&facts("a@example.net", "Your invoice #12")));
        assert!(!filter.matches(&facts("a@example.com", "Hello")));
        assert!(MailFilter::default().matches(&facts("a@b.c", "")));
        let labelled = MailFilter {
            label: Some("invoices".into()),
            has_attachment: Some(false),
            to: Some("me@*".into()),
            ..MailFilter::default()
        };
        assert!(labelled.matches(&facts("a@b.c", "")));
        let attached = MailFilter {
            has_attachment: Some(true),
            ..MailFilter::default()
        };
        assert!(!attached.matches(&facts("a@b.c", "")));
    }

    #[test]
    fn bad_parts_are_named() {
        let filter = MailFilter {
            from: Some("example.com".into()),
            to: Some("a@b.c\nBcc: x".into()),
            subject_contains: Some(" ".into()),
            has_attachment: None,
            label: Some("x".repeat(300)),
        };
        let fields: Vec<String> = filter.validate().into_iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            [
                "trigger.filter.from",
                "trigger.filter.to",
                "trigger.filter.subject_contains",
                "trigger.filter.label"
            ]
        );
        assert_eq!(
            MailFilter {
                from: Some("x".into()),
                ..MailFilter::default()
            }
            .describe(),
            "from x"
        );
    }
}
