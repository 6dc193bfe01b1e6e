//! Outbound webhooks: the events Mailwright sends, and the URLs it may send
//! them (and `http.post` steps) to. An address that reaches the server's own
//! network (loopback, private, link-local, ...) is refused unless the
//! operator allows it, so a tenant cannot make Mailwright probe its
//! neighbours.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What happened, as an event type name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    IntegrationStatusChanged,
    AutodraftDraftCreated,
    AutodraftMessageFailed,
    WorkflowRunSucceeded,
    WorkflowRunFailed,
    SystemEmailDeliveryFailed,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::IntegrationStatusChanged,
        EventType::AutodraftDraftCreated,
        EventType::AutodraftMessageFailed,
        EventType::WorkflowRunSucceeded,
        EventType::WorkflowRunFailed,
        EventType::SystemEmailDeliveryFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::IntegrationStatusChanged => "integration.status_changed",
            EventType::AutodraftDraftCreated => "autodraft.draft_created",
            EventType::AutodraftMessageFailed => "autodraft.message_failed",
            EventType::WorkflowRunSucceeded => "workflow.run_succeeded",
            EventType::WorkflowRunFailed => "workflow.run_failed",
            EventType::SystemEmailDeliveryFailed => "system_email.delivery_failed",
        }
    }

    pub fn parse(text: &str) -> Option<EventType> {
        EventType::ALL
            .into_iter()
            .find(|event| event.as_str() == text)
    }

    /// What it means, for the settings page.
    pub fn describe(self) -> &'static str {
        match self {
            EventType::IntegrationStatusChanged => "a connection's status changed",
            EventType::AutodraftDraftCreated => "auto-draft created a draft",
            EventType::AutodraftMessageFailed => "auto-draft failed on a message for good",
            EventType::WorkflowRunSucceeded => "a workflow run succeeded",
            EventType::WorkflowRunFailed => "a workflow run failed for good",
            EventType::SystemEmailDeliveryFailed => "a system email could not be delivered",
        }
    }
}

/// Longest URL accepted.
pub const MAX_URL_CHARS: usize = 2048;

/// An `http` or `https` URL Mailwright may call: no credentials in it, and
/// (unless `allow_private`) no literal address of a private network. Host
/// names are checked again when they are resolved, at each call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundUrl(String);

impl OutboundUrl {
    pub fn parse(text: &str, allow_private: bool) -> Result<OutboundUrl, &'static str> {
        let text = text.trim();
        if text.is_empty() {
            return Err("is required");
        }
        if text.chars().count() > MAX_URL_CHARS {
            return Err("must be at most 2048 characters");
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err("must be an http:// or https:// URL");
        };
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return Err("must be an http:// or https:// URL");
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain spaces");
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err("must not contain a user name or password");
        }
        let host = host_of(authority).ok_or("must name a host")?;
        if !allow_private {
            if let Ok(ip) = host.parse::<IpAddr>()
                && !is_public(ip)
            {
                return Err("must not be a private, loopback or link-local address");
            }
            if host.eq_ignore_ascii_case("localhost")
                || host.to_ascii_lowercase().ends_with(".localhost")
            {
                return Err("must not be a private, loopback or link-local address");
            }
        }
        Ok(OutboundUrl(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The host of `host[:port]` or `[v6]:port`, without brackets.
fn host_of(authority: &str) -> Option<&str> {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        rest.split_once(']')?.0
    } else {
        authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host)
    };
    (!host.is_empty()).then_some(host)
}

/// Whether `ip` is on the public internet: not loopback, private (RFC 1918,
/// unique local), link-local, carrier-grade NAT, unspecified, multicast,
/// broadcast or reserved, including IPv4 written as IPv6.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => {
            if let Some(v4) = ip.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            is_public_v6(ip)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Carrier-grade NAT, 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, 192.0.0.0/24; benchmarking 198.18.0.0/15.
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (18..20).contains(&b))
        // Reserved, 240.0.0.0/4.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    let first = segments[0];
    let embedded = |high: u16, low: u16| {
        Ipv4Addr::new((high >> 8) as u8, high as u8, (low >> 8) as u8, low as u8)
    };
    // IPv4 inside IPv6: NAT64 (64:ff9b::/96), 6to4 (2002::/16) and the
    // deprecated IPv4-compatible form (::/96) reach the IPv4 address.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || segments[..6] == [0, 0, 0, 0, 0, 0] {
        return !ip.is_unspecified()
            && !ip.is_loopback()
            && is_public_v4(embedded(segments[6], segments[7]));
    }
    if first == 0x2002 {
        return is_public_v4(embedded(segments[1], segments[2]));
    }
    // Local-use NAT64 (64:ff9b:1::/48) and discard-only (100::/64).
    if (first == 0x64 && segments[1] == 0xff9b && segments[2] == 1)
        || (first == 0x100 && segments[1..4] == [0, 0, 0])
    {
        return false;
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local fc00::/7, link-local fe80::/10, site-local fec0::/10.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first & 0xffc0) == 0xfec0
        // Documentation 2001:db8::/32.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_round_trip() {
        for event in EventType::ALL {
            assert_eq!(EventType::parse(event.as_str()), Some(event));
        }
        assert_eq!(EventType::parse("run.exploded"), None);
    }

    #[test]
    fn private_networks_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1/hook",
            "http://10.0.0.1/hook",
            "https://192.168.1.5:8443/x",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]:8080/",
            "http://[fd00::1]/",
            "http://[::ffff:10.0.0.1]/",
            "http://[64:ff9b::a00:1]/",
            "http://[2002:a00:1::]/",
            "http://[::10.0.0.1]/",
            "http://[100::1]/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://localhost:8080/",
        ] {
            assert_eq!(
                OutboundUrl::parse(url, false),
                Err("must not be a private, loopback or link-local address"),
                "{url}"
            );
            assert!(OutboundUrl::parse(url, true).is_ok(), "{url}");
        }
        assert!(OutboundUrl::parse("https://hooks.example.com/in?x=1", false).is_ok());
        assert!(OutboundUrl::parse("http://8.8.8.8/", false).is_ok());
        assert!(OutboundUrl::parse("http://[64:ff9b::808:808]/", false).is_ok());
        assert!(OutboundUrl::parse("http://[2001:4860:4860::8888]/", false).is_ok());
    }

    #[test]
    fn only_plain_http_urls_are_taken() {
        assert_eq!(OutboundUrl::parse("", false), Err("is required"));
        assert_eq!(
            OutboundUrl::parse("ftp://example.com/", false),
            Err("must be an http:// or https:// URL")
        );
        assert_eq!(
            OutboundUrl::parse("https://user:pw@example.com/", false),
            Err("must not contain a user name or password")
        );
        assert_eq!(
            OutboundUrl::parse("https://exa mple.com/", false),
            Err("must not contain spaces")
        );
        assert_eq!(
            OutboundUrl::parse("https:///path", false),
            Err("must name a host")
        );
    }
}
