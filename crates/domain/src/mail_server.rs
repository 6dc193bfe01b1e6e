//! The IMAP and SMTP servers of a mailbox connected by password, as a person
//! gives them: a host, a port and how the connection is secured. Parsed here
//! so nothing past the edge sees a host with a space or a port of 0.

use std::fmt;

/// How a connection to a mail server is secured. There is no plain-text
/// choice: a password never crosses the network in clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Security {
    /// TLS from the first byte (IMAP 993, SMTP 465).
    Tls,
    /// A plain connection upgraded with STARTTLS before logging in (IMAP
    /// 143, SMTP 587).
    StartTls,
}

impl Security {
    pub fn as_str(self) -> &'static str {
        match self {
            Security::Tls => "tls",
            Security::StartTls => "starttls",
        }
    }

    pub fn parse(text: &str) -> Option<Security> {
        match text {
            "tls" => Some(Security::Tls),
            "starttls" => Some(Security::StartTls),
            _ => None,
        }
    }
}

/// Where a mail server listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerEndpoint {
    host: String,
    pub port: u16,
    pub security: Security,
}

/// What is wrong with a server's settings, to show next to the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidServer(pub &'static str);

impl ServerEndpoint {
    /// `host` is a DNS name or an IP address (IPv6 without brackets);
    /// `port` 1 to 65535.
    pub fn parse(host: &str, port: i64, security: &str) -> Result<ServerEndpoint, InvalidServer> {
        let host = host.trim().trim_end_matches('.');
        if host.is_empty() {
            return Err(InvalidServer("host is required"));
        }
        if host.len() > 253 {
            return Err(InvalidServer("host is longer than 253 characters"));
        }
        let is_ip = host.parse::<std::net::IpAddr>().is_ok();
        let is_name = host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
        if !is_ip && !is_name {
            return Err(InvalidServer(
                "host must be a name such as imap.example.com or an IP address",
            ));
        }
        let port = u16::try_from(port)
            .ok()
            .filter(|port| *port != 0)
            .ok_or(InvalidServer("port must be between 1 and 65535"))?;
        let security = Security::parse(security)
            .ok_or(InvalidServer("security must be \"tls\" or \"starttls\""))?;
        Ok(ServerEndpoint {
            host: host.to_ascii_lowercase(),
            port,
            security,
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }
}

impl fmt::Display for ServerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A user name or password for IMAP and SMTP: 1 to `max` characters, none
/// of them a line break or NUL (neither protocol can carry those in a login).
pub fn check_credential(text: &str, max: usize) -> Result<(), InvalidServer> {
    if text.is_empty() {
        return Err(InvalidServer("is required"));
    }
    if text.chars().count() > max {
        return Err(InvalidServer("is too long"));
    }
    if text.contains(['\r', '\n', '\0']) {
        return Err(InvalidServer("must not contain line breaks"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let endpoint = ServerEndpoint::parse(" IMAP.Example.com. ", 993, "tls").unwrap();
        assert_eq!(endpoint.host(), "imap.example.com");
        assert_eq!(endpoint.to_string(), "imap.example.com:993");
        assert_eq!(
            ServerEndpoint::parse("::1", 143, "starttls")
                .unwrap()
                .to_string(),
            "[::1]:143"
        );
        for (host, port, security) in [
            ("", 993, "tls"),
            ("imap example.com", 993, "tls"),
            ("imap.exa\r\nmple.com", 993, "tls"),
            ("-bad.example.com", 993, "tls"),
            ("imap.example.com", 0, "tls"),
            ("imap.example.com", 70000, "tls"),
            ("imap.example.com", 993, "none"),
            ("imap.example.com", 993, "TLS"),
        ] {
            assert!(
                ServerEndpoint::parse(host, port, security).is_err(),
                "{host:?} {port} {security}"
            );
        }
    }

    #[test]
    fn credentials() {
        assert!(check_credential("app-password 1", 1024).is_ok());
        assert!(check_credential("", 1024).is_err());
        assert!(check_credential("a\r\nb", 1024).is_err());
        assert!(check_credential(&"x".repeat(1025), 1024).is_err());
    }
}
