//! Email addresses as Mailwright accepts them from people: trimmed, one `@`,
//! no spaces or control characters (so never a header injection), at most
//! 254 characters, compared in lower case.

use std::fmt;

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidEmail(&'static str);

impl EmailAddress {
    pub fn parse(text: &str) -> Result<EmailAddress, InvalidEmail> {
        let text = text.trim();
        if text.is_empty() {
            return Err(InvalidEmail("is required"));
        }
        if text.len() > 254 {
            return Err(InvalidEmail("is longer than 254 characters"));
        }
        if text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>' || c == ',')
        {
            return Err(InvalidEmail(
                "must be a bare address such as name@example.com",
            ));
        }
        match text.split_once('@') {
            Some((local, domain))
                if !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.') =>
            {
                Ok(EmailAddress(text.to_lowercase()))
            }
            _ => Err(InvalidEmail(
                "is not an email address such as name@example.com",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        assert_eq!(
            EmailAddress::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
    }

    #[test]
    fn refuses_what_is_not_one_address() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@localhost",
            "a b@example.com",
            "ada@example.com\r\nBcc: x@y.z",
            "Ada <ada@example.com>",
            "a@b@c.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
    }
}
