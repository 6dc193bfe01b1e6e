//! What became of a draft Mailwright wrote: found from the mailbox, judged
//! by comparing texts (never by labels alone).

use sha2::{Digest, Sha256};

/// A draft's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DraftOutcome {
    /// Still a draft (possibly edited).
    Pending,
    /// Sent as Mailwright wrote it.
    SentUnchanged,
    /// Sent after the person changed it.
    SentEdited,
    /// Deleted without being sent.
    Deleted,
    /// Deleted by Mailwright's opt-in clean-up (untouched and stale).
    CleanedUp,
}

impl DraftOutcome {
    pub const ALL: [DraftOutcome; 5] = [
        DraftOutcome::Pending,
        DraftOutcome::SentUnchanged,
        DraftOutcome::SentEdited,
        DraftOutcome::Deleted,
        DraftOutcome::CleanedUp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DraftOutcome::Pending => "pending",
            DraftOutcome::SentUnchanged => "sent_unchanged",
            DraftOutcome::SentEdited => "sent_edited",
            DraftOutcome::Deleted => "deleted",
            DraftOutcome::CleanedUp => "cleaned_up",
        }
    }

    pub fn parse(text: &str) -> Option<DraftOutcome> {
        DraftOutcome::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == text)
    }

    /// In words, for the drafts list.
    pub fn describe(self) -> &'static str {
        match self {
            DraftOutcome::Pending => "waiting",
            DraftOutcome::SentUnchanged => "sent as written",
            DraftOutcome::SentEdited => "sent after edits",
            DraftOutcome::Deleted => "deleted without sending",
            DraftOutcome::CleanedUp => "cleaned up by Mailwright",
        }
    }
}

/// A text as compared: line endings and trailing spaces of lines ignored,
/// blank lines at either end dropped, runs of blank lines as one.
pub fn normalize(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut lines: Vec<&str> = Vec::new();
    for line in text.lines().map(str::trim_end) {
        if line.is_empty() && lines.last().is_some_and(|last| last.is_empty()) {
            continue;
        }
        lines.push(line);
    }
    lines.join("\n").trim().to_owned()
}

/// SHA-256 of the normalized text, hex: how a draft's content is recognised
/// as the one Mailwright wrote.
pub fn fingerprint(text: &str) -> String {
    Sha256::digest(normalize(text).as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Longest texts compared word by word (beyond, the rest counts as changed).
const MAX_COMPARED_WORDS: usize = 2_000;

/// How much of `ours` the person changed to get `theirs`, in percent of
/// words (0: the same words; 100: nothing in common): one minus the longest
/// common subsequence of words over the longer text's length.
pub fn changed_percent(ours: &str, theirs: &str) -> u8 {
    let a: Vec<&str> = ours.split_whitespace().take(MAX_COMPARED_WORDS).collect();
    let b: Vec<&str> = theirs.split_whitespace().take(MAX_COMPARED_WORDS).collect();
    let longest = a.len().max(b.len());
    if longest == 0 {
        return 0;
    }
    // One row of the LCS table at a time: O(a × b) time, O(b) memory.
    let mut previous = vec![0usize; b.len() + 1];
    let mut current = vec![0usize; b.len() + 1];
    for word in &a {
        for (j, other) in b.iter().enumerate() {
            current[j + 1] = if word == other {
                previous[j] + 1
            } else {
                previous[j + 1].max(current[j])
            };
        }
        std::mem::swap(&mut previous, &mut current);
    }
    let common = previous[b.len()];
    let kept = common * 100 / longest;
    u8::try_from(100 - kept.min(100)).unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_compare_by_words_and_ignore_line_endings() {
        assert_eq!(normalize("Hi\r\n\r\n\r\nThere  \r\n"), "Hi\n\nThere");
        assert_eq!(fingerprint("Hi\r\nthere"), fingerprint("Hi\nthere\n"));
        assert_ne!(fingerprint("Hi there"), fingerprint("Hi there!"));
        assert_eq!(changed_percent("a b c d", "a b c d"), 0);
        assert_eq!(changed_percent("a b c d", "a b x d"), 25);
        assert_eq!(changed_percent("a b c d", "w x y z"), 100);
        assert_eq!(changed_percent("", ""), 0);
        for outcome in DraftOutcome::ALL {
            assert_eq!(DraftOutcome::parse(outcome.as_str()), Some(outcome));
        }
    }
}
