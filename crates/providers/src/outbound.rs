//! Calls to URLs a tenant chose (webhook endpoints): a POST with a time
//! limit, no redirects followed, and, unless the operator allows private
//! networks, no connection to an address of one. Host names are checked when
//! they are resolved, so a name that points at `127.0.0.1` (or is changed to,
//! after the URL was accepted) is refused too.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use domain::webhooks::is_public;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// How long one call may take, connecting included.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of an answer's body is kept, to show people what the endpoint
/// said (characters).
pub const EXCERPT_CHARS: usize = 200;
/// Bytes read from an answer's body at most.
const BODY_READ_LIMIT: usize = 2048;

/// What the endpoint answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The start of its body, control characters replaced.
    pub excerpt: String,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// The URL reaches a private network, which this server does not call.
    #[error("{0}")]
    Refused(String),
    /// No answer: the name did not resolve, the connection failed or the
    /// time ran out. The sentence says which.
    #[error("{0}")]
    NoAnswer(String),
}

/// The address a name resolved to is on a private network.
#[derive(Debug)]
struct PrivateAddress(String);

impl std::fmt::Display for PrivateAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} resolves only to private, loopback or link-local addresses",
            self.0
        )
    }
}

impl std::error::Error for PrivateAddress {}

/// Resolves with the system resolver, then drops every address this
/// server may not call.
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|address| allow_private || is_public(address.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(
                    Box::new(PrivateAddress(host)) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[derive(Clone)]
pub struct OutboundClient {
    client: reqwest::Client,
    allow_private: bool,
}

impl std::fmt::Debug for OutboundClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundClient")
            .field("allow_private", &self.allow_private)
            .finish_non_exhaustive()
    }
}

impl OutboundClient {
    pub fn new(allow_private: bool, timeout: Duration) -> Result<OutboundClient, reqwest::Error> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("mailwright-webhooks/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve the tenant's host itself, past the
            // guarded resolver: outbound calls go direct.
            .no_proxy()
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .build()?;
        Ok(OutboundClient {
            client,
            allow_private,
        })
    }

    /// POST `body` (JSON) to `url` with `headers`.
    pub async fn post_json(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: String,
    ) -> Result<Answer, OutboundError> {
        let parsed = url::Url::parse(url)
            .map_err(|_| OutboundError::Refused("the URL cannot be read".into()))?;
        // Literal addresses never reach the resolver.
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal
            && !self.allow_private
            && !is_public(ip)
        {
            return Err(OutboundError::Refused(format!(
                "{ip} is a private, loopback or link-local address, which this server does not call"
            )));
        }
        let mut request = self
            .client
            .post(parsed)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let mut response = request.send().await.map_err(|error| describe(&error))?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while body.len() < BODY_READ_LIMIT {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                // What was read is enough to show; the rest does not matter.
                Ok(None) | Err(_) => break,
            }
        }
        Ok(Answer {
            status,
            excerpt: excerpt(&body),
        })
    }
}

/// The start of a body, as one line of text.
fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .take(EXCERPT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Why a call got no answer, in words (never the URL's query or secrets).
fn describe(error: &reqwest::Error) -> OutboundError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(private) = cause.downcast_ref::<PrivateAddress>() {
            return OutboundError::Refused(format!("{private}, which this server does not call"));
        }
        source = cause.source();
    }
    if error.is_timeout() {
        OutboundError::NoAnswer(format!("no answer within {} s", CALL_TIMEOUT.as_secs()))
    } else if error.is_connect() {
        OutboundError::NoAnswer(
            "the connection failed (refused, unreachable or the name does not resolve)".into(),
        )
    } else {
        OutboundError::NoAnswer("the request failed before an answer came".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_single_lines() {
        assert_eq!(excerpt(b"ok\r\nthanks"), "ok  thanks");
        assert_eq!(excerpt(&[b'x'; 500]).len(), EXCERPT_CHARS);
    }

    #[tokio::test]
    async fn private_addresses_are_refused_by_literal_and_by_name() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = OutboundClient::new(false, CALL_TIMEOUT).unwrap();
        for url in [
            "http://127.0.0.1:9/hook",
            "http://10.0.0.1/hook",
            "http://localhost:9/hook",
        ] {
            let refused = client.post_json(url, &[], "{}".into()).await;
            assert!(
                matches!(refused, Err(OutboundError::Refused(_))),
                "{url}: {refused:?}"
            );
        }
    }
}
