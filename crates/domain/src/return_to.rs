//! Where to send the browser after connecting: a path on this service only,
//! so the OAuth callback can never become an open redirect.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnTo(String);

pub const DEFAULT_RETURN_TO: &str = "/integrations";

impl ReturnTo {
    pub fn parse(text: &str) -> Result<ReturnTo, &'static str> {
        if text.len() > 512 {
            return Err("must be at most 512 characters");
        }
        let same_origin_path = text.starts_with('/')
            && !text.starts_with("//")
            && !text.starts_with("/\\")
            && !text
                .chars()
                .any(|c| c.is_control() || c == '\\' || c.is_whitespace());
        if !same_origin_path {
            return Err("must be a path on this service, such as /integrations");
        }
        Ok(ReturnTo(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path with `key=value` pairs added to its query.
    pub fn with_query(&self, pairs: &[(&str, &str)]) -> String {
        let (path, fragment) = match self.0.split_once('#') {
            Some((path, fragment)) => (path, Some(fragment)),
            None => (self.0.as_str(), None),
        };
        let mut out = path.to_owned();
        for (index, (key, value)) in pairs.iter().enumerate() {
            let separator = if index == 0 && !path.contains('?') {
                '?'
            } else {
                '&'
            };
            out.push(separator);
            out.push_str(key);
            out.push('=');
            out.push_str(&encode(value));
        }
        if let Some(fragment) = fragment {
            out.push('#');
            out.push_str(fragment);
        }
        out
    }
}

impl Default for ReturnTo {
    fn default() -> Self {
        ReturnTo(DEFAULT_RETURN_TO.to_owned())
    }
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_service() {
        for good in ["/", "/integrations", "/settings?tab=google"] {
            assert!(ReturnTo::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "integrations",
            "javascript:alert(1)",
            "/a b",
            "/a\r\nSet-Cookie: x",
            "",
        ] {
            assert!(ReturnTo::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn query_pairs_are_appended() {
        let plain = ReturnTo::parse("/integrations").unwrap();
        assert_eq!(
            plain.with_query(&[("connected", "gmail"), ("integration_id", "a b")]),
            "/integrations?connected=gmail&integration_id=a%20b"
        );
        let with_query = ReturnTo::parse("/x?tab=1#top").unwrap();
        assert_eq!(
            with_query.with_query(&[("error", "access_denied")]),
            "/x?tab=1&error=access_denied#top"
        );
    }
}
