//! A mailbox's own drafting rules: senders and domains to always or never
//! draft for, and what the person asks of every draft.

use serde::{Deserialize, Serialize};

/// Most entries in each list.
pub const MAX_RULE_ENTRIES: usize = 200;
/// Longest instructions.
pub const MAX_INSTRUCTIONS_CHARS: usize = 2000;

/// Who gets drafts regardless of the bulk-mail rules, and who never does.
/// Each entry is an address (`ada@example.com`), a pattern with `*`
/// (`*@example.com`) or a domain (`example.com`, which also covers its
/// subdomains).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DraftRules {
    #[serde(default)]
    pub always: Vec<String>,
    #[serde(default)]
    pub never: Vec<String>,
    /// Skip first-contact sales pitches and cold outreach
    /// (`cold_outreach`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_cold_outreach: bool,
    /// A model's answer less sure than this (0 to 100, in percent) is
    /// skipped as `low_confidence` instead of drafted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_confidence: Option<u8>,
}

/// What the rules say of a sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleVerdict {
    /// Draft even for mail the bulk rules would skip (lists, no-reply,
    /// automatic mail, promotions).
    Always,
    Never,
}

impl DraftRules {
    /// Every problem, as `(field, message)` with `rules.always[0]` paths.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (name, list) in [("always", &self.always), ("never", &self.never)] {
            if list.len() > MAX_RULE_ENTRIES {
                problems.push((
                    format!("rules.{name}"),
                    format!("must hold at most {MAX_RULE_ENTRIES} entries"),
                ));
                continue;
            }
            for (index, entry) in list.iter().enumerate() {
                if let Err(problem) = check_entry(entry) {
                    problems.push((format!("rules.{name}[{index}]"), problem.to_owned()));
                }
            }
        }
        if self.min_confidence.is_some_and(|min| min > 100) {
            problems.push((
                "rules.min_confidence".to_owned(),
                "must be a percentage from 0 to 100".to_owned(),
            ));
        }
        problems
    }

    /// The rule for `sender` (a bare address): `never` wins over `always`.
    pub fn verdict(&self, sender: &str) -> Option<RuleVerdict> {
        let listed = |list: &[String]| list.iter().any(|entry| entry_matches(entry, sender));
        if listed(&self.never) {
            Some(RuleVerdict::Never)
        } else if listed(&self.always) {
            Some(RuleVerdict::Always)
        } else {
            None
        }
    }

    pub fn is_empty(&self) -> bool {
        self.always.is_empty() && self.never.is_empty()
    }
}

/// The instructions as kept: trimmed, `None` when empty; too long is an
/// error naming the limit.
pub fn check_instructions(text: &str) -> Result<Option<String>, String> {
    let text = text.trim();
    if text.chars().count() > MAX_INSTRUCTIONS_CHARS {
        return Err(format!(
            "must be at most {MAX_INSTRUCTIONS_CHARS} characters"
        ));
    }
    Ok(Some(text.to_owned()).filter(|text| !text.is_empty()))
}

fn check_entry(entry: &str) -> Result<(), &'static str> {
    let entry = entry.trim();
    let bad = entry.is_empty()
        || entry.chars().count() > 254
        || entry
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | '"'))
        || (!entry.contains('@') && !entry.contains('.'));
    if bad {
        Err("must be an address, a pattern such as *@example.com, or a domain such as example.com")
    } else {
        Ok(())
    }
}

fn entry_matches(entry: &str, sender: &str) -> bool {
    let entry = entry.trim().to_lowercase();
    let sender = sender.trim().to_lowercase();
    if entry.contains('@') {
        return crate::workflows::wildcard_match(&entry, &sender);
    }
    // A domain: the sender's, or one of its subdomains.
    let domain = sender.rsplit_once('@').map_or("", |(_, domain)| domain);
    let entry = entry.trim_start_matches("*.");
    domain == entry || domain.ends_with(&format!(".{entry}"))
}

/// Phrases of first-contact sales mail; two or more make a message cold
/// outreach.
const PITCH_PHRASES: &[&str] = &[
    "quick call",
    "15 minutes",
    "15-minute",
    "book a demo",
    "schedule a demo",
    "i came across",
    "i noticed that your",
    "partnership opportunity",
    "would you be open to",
    "are you the right person",
    "our platform",
    "our solution",
    "increase your",
    "boost your",
    "lead generation",
    "grow your",
    "reaching out",
    "i'd love to show you",
    "free trial",
    "case study",
    "decision maker",
    "not interested",
];

/// Whether a message that starts its conversation reads as cold outreach
/// or a sales pitch.
pub fn looks_like_cold_outreach(subject: &str, text: &str) -> bool {
    let haystack = format!("{subject}\n{}", super::text_excerpt(text)).to_lowercase();
    PITCH_PHRASES
        .iter()
        .filter(|phrase| haystack.contains(*phrase))
        .count()
        >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pitches_are_told_from_questions() {
        assert!(looks_like_cold_outreach(
            "Quick question",
            "Hi Ann, I came across your company and would you be open to a quick call next week?"
        ));
        assert!(!looks_like_cold_outreach(
            "Lunch",
            "Hi Ann, would you be open to lunch on Friday?"
        ));
    }

    #[test]
    fn never_wins_and_domains_cover_subdomains() {
        let rules = DraftRules {
            always: vec!["example.com".into(), "boss@corp.test".into()],
            never: vec!["*@news.example.com".into()],
            ..DraftRules::default()
        };
        assert_eq!(rules.verdict("ada@example.com"), Some(RuleVerdict::Always));
        assert_eq!(
            rules.verdict("ada@eu.example.com"),
            Some(RuleVerdict::Always)
        );
        assert_eq!(
            rules.verdict("x@news.example.com"),
            Some(RuleVerdict::Never)
        );
        assert_eq!(rules.verdict("Boss@Corp.test"), Some(RuleVerdict::Always));
        assert_eq!(rules.verdict("ada@notexample.com"), None);
        let bad = DraftRules {
            always: vec!["".into(), "a b@c.d".into()],
            never: vec!["localhost".into()],
            ..DraftRules::default()
        };
        let fields: Vec<String> = bad.validate().into_iter().map(|(field, _)| field).collect();
        assert_eq!(
            fields,
            ["rules.always[0]", "rules.always[1]", "rules.never[0]"]
        );
        assert_eq!(check_instructions("  "), Ok(None));
        assert!(check_instructions(&"x".repeat(2001)).is_err());
    }
}
