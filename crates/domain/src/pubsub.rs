//! Google Cloud Pub/Sub names: the topic Gmail publishes a watched
//! mailbox's changes to.

use std::fmt;

/// `projects/PROJECT/topics/TOPIC`, checked against Pub/Sub's naming rules
/// (a topic starts with a letter, is 3 to 255 characters of letters, digits
/// and `-_.~+%`, and does not start with `goog`) so a typo is refused at
/// start instead of by every `users.watch`.
#[derive(Clone, PartialEq, Eq)]
pub struct PubSubTopic {
    full_name: String,
}

impl PubSubTopic {
    pub fn parse(value: &str) -> Result<PubSubTopic, String> {
        let shape = "must look like projects/PROJECT/topics/TOPIC";
        let mut parts = value.split('/');
        let (Some("projects"), Some(project), Some("topics"), Some(topic), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(format!("`{value}` {shape}"));
        };
        // Project ids are lowercase letters, digits and hyphens; older
        // domain-scoped ones carry `example.com:`.
        let project_ok = !project.is_empty()
            && project.len() <= 100
            && project
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-.:".contains(c));
        if !project_ok {
            return Err(format!(
                "`{project}` is not a Google Cloud project id (lowercase letters, digits and hyphens); the topic {shape}"
            ));
        }
        let topic_ok = (3..=255).contains(&topic.len())
            && topic.starts_with(|c: char| c.is_ascii_alphabetic())
            && !topic.to_ascii_lowercase().starts_with("goog")
            && topic
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.~+%".contains(c));
        if !topic_ok {
            return Err(format!(
                "`{topic}` is not a Pub/Sub topic name (3-255 letters, digits or -_.~+%, starting with a letter, not with `goog`)"
            ));
        }
        Ok(PubSubTopic {
            full_name: value.to_owned(),
        })
    }

    /// The full name Gmail's `users.watch` takes.
    pub fn as_str(&self) -> &str {
        &self.full_name
    }

    pub fn project(&self) -> &str {
        self.full_name.split('/').nth(1).unwrap_or_default()
    }
}

impl fmt::Display for PubSubTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full_name)
    }
}

impl fmt::Debug for PubSubTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PubSubTopic({})", self.full_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_as_google_names_them_are_accepted() {
        for topic in [
            "projects/my-project/topics/gmail",
            "projects/example.com:legacy-1/topics/Gmail.Push_2~x+y%20",
        ] {
            assert_eq!(PubSubTopic::parse(topic).unwrap().as_str(), topic);
        }
        assert_eq!(
            PubSubTopic::parse("projects/acme-mail/topics/gmail")
                .unwrap()
                .project(),
            "acme-mail"
        );
    }

    #[test]
    fn other_shapes_are_refused_with_the_expected_shape() {
        for (bad, says) in [
            ("gmail", "projects/PROJECT/topics/TOPIC"),
            ("projects/p/topics", "projects/PROJECT/topics/TOPIC"),
            (
                "projects/p/subscriptions/s",
                "projects/PROJECT/topics/TOPIC",
            ),
            ("projects/p/topics/t/extra", "projects/PROJECT/topics/TOPIC"),
            ("projects//topics/gmail", "project id"),
            ("projects/My_Project/topics/gmail", "project id"),
            ("projects/p/topics/ab", "topic name"),
            ("projects/p/topics/1gmail", "topic name"),
            ("projects/p/topics/google-push", "topic name"),
            ("projects/p/topics/gmail push", "topic name"),
        ] {
            let error = PubSubTopic::parse(bad).unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
        }
    }
}
