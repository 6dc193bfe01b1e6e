//! Google OAuth scopes, what each integration type needs, and which needed
//! scopes a grant lacks. Scopes are written as Google writes them in its token
//! response (full URLs, plus `openid`), and that is how clients see them.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

pub const OPENID: &str = "openid";
pub const USERINFO_EMAIL: &str = "https://www.googleapis.com/auth/userinfo.email";
pub const USERINFO_PROFILE: &str = "https://www.googleapis.com/auth/userinfo.profile";
pub const GMAIL_READONLY: &str = "https://www.googleapis.com/auth/gmail.readonly";
pub const GMAIL_COMPOSE: &str = "https://www.googleapis.com/auth/gmail.compose";
pub const GMAIL_SEND: &str = "https://www.googleapis.com/auth/gmail.send";
pub const GMAIL_MODIFY: &str = "https://www.googleapis.com/auth/gmail.modify";
pub const MAIL_GOOGLE_COM: &str = "https://mail.google.com/";
pub const CALENDAR_EVENTS: &str = "https://www.googleapis.com/auth/calendar.events";

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationType {
    Gmail,
    Calendar,
    /// A mailbox reached by IMAP and SMTP with a password: no scopes (the
    /// password allows everything a mailbox needs).
    Imap,
}

impl IntegrationType {
    pub const ALL: [IntegrationType; 3] = [
        IntegrationType::Gmail,
        IntegrationType::Calendar,
        IntegrationType::Imap,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationType::Gmail => "gmail",
            IntegrationType::Calendar => "calendar",
            IntegrationType::Imap => "imap",
        }
    }

    /// Who holds the account: `google` or `imap` (the `provider` column
    /// and field).
    pub fn provider(self) -> &'static str {
        match self {
            IntegrationType::Gmail | IntegrationType::Calendar => "google",
            IntegrationType::Imap => "imap",
        }
    }

    /// Whether a connection of this type holding `granted` allows
    /// `capability`: Google's by their scopes; an IMAP mailbox's password
    /// allows what a mailbox does (labels and calendars are Google's).
    pub fn allows(self, granted: &ScopeSet, capability: Capability) -> bool {
        match self {
            IntegrationType::Gmail | IntegrationType::Calendar => granted.allows(capability),
            IntegrationType::Imap => matches!(
                capability,
                Capability::Identity
                    | Capability::Email
                    | Capability::Profile
                    | Capability::ReadMail
                    | Capability::Draft
                    | Capability::Send
            ),
        }
    }

    /// Whether it is a mailbox (auto-draft, mail workflows).
    pub fn is_mailbox(self) -> bool {
        matches!(self, IntegrationType::Gmail | IntegrationType::Imap)
    }

    pub fn parse(text: &str) -> Option<IntegrationType> {
        match text {
            "gmail" => Some(IntegrationType::Gmail),
            "calendar" => Some(IntegrationType::Calendar),
            "imap" => Some(IntegrationType::Imap),
            _ => None,
        }
    }

    /// What this type needs, capability by capability.
    pub fn capabilities(self) -> &'static [Capability] {
        match self {
            IntegrationType::Gmail => &[
                Capability::Identity,
                Capability::Email,
                Capability::Profile,
                Capability::ReadMail,
                Capability::Draft,
                Capability::Send,
            ],
            IntegrationType::Calendar => &[
                Capability::Identity,
                Capability::Email,
                Capability::Profile,
                Capability::Calendar,
            ],
            IntegrationType::Imap => &[],
        }
    }

    /// The scopes to ask for when connecting.
    pub fn requested_scopes(self) -> Vec<&'static str> {
        self.capabilities()
            .iter()
            .map(|capability| capability.preferred_scope())
            .collect()
    }
}

impl fmt::Display for IntegrationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing a connection lets Mailwright do, and the scopes that allow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    /// Knowing which Google account this is.
    Identity,
    Email,
    Profile,
    ReadMail,
    Draft,
    Send,
    Calendar,
    /// Adding and removing labels: optional, asked for only when a workflow
    /// has a label step (`gmail.modify` is broader than the rest needs).
    Labels,
}

impl Capability {
    pub const ALL: [Capability; 8] = [
        Capability::Identity,
        Capability::Email,
        Capability::Profile,
        Capability::ReadMail,
        Capability::Draft,
        Capability::Send,
        Capability::Calendar,
        Capability::Labels,
    ];

    /// A scope in plain language: what it allows and its short name
    /// ("create drafts (gmail.compose)"), or the short name alone for a
    /// scope Mailwright does not ask for.
    pub fn describe_scope(scope: &str) -> String {
        let short = scope.rsplit('/').next().unwrap_or(scope);
        match Capability::ALL
            .into_iter()
            .find(|capability| capability.preferred_scope() == scope)
        {
            Some(capability) => format!("{} ({short})", capability.describe()),
            None => short.to_owned(),
        }
    }

    /// Any one of these scopes grants the capability (first: the one to ask for).
    pub fn scopes(self) -> &'static [&'static str] {
        match self {
            Capability::Identity => &[OPENID],
            Capability::Email => &[USERINFO_EMAIL],
            Capability::Profile => &[USERINFO_PROFILE],
            Capability::ReadMail => &[GMAIL_READONLY, GMAIL_MODIFY, MAIL_GOOGLE_COM],
            Capability::Draft => &[GMAIL_COMPOSE, GMAIL_MODIFY, MAIL_GOOGLE_COM],
            Capability::Send => &[GMAIL_SEND, GMAIL_COMPOSE, GMAIL_MODIFY, MAIL_GOOGLE_COM],
            Capability::Calendar => &[CALENDAR_EVENTS],
            Capability::Labels => &[GMAIL_MODIFY, MAIL_GOOGLE_COM],
        }
    }

    pub fn preferred_scope(self) -> &'static str {
        self.scopes()[0]
    }

    /// In words, for people: "read your mail".
    pub fn describe(self) -> &'static str {
        match self {
            Capability::Identity => "know which Google account this is",
            Capability::Email => "see your email address",
            Capability::Profile => "see your name",
            Capability::ReadMail => "read your mail",
            Capability::Draft => "create drafts",
            Capability::Send => "send mail as you",
            Capability::Calendar => "manage your calendar events",
            Capability::Labels => "add and remove labels",
        }
    }
}

/// The scopes a grant holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(BTreeSet<String>);

impl ScopeSet {
    /// From Google's space-delimited `scope` (short forms normalised: Google
    /// answers a request for `email` with the userinfo URL).
    pub fn parse(space_delimited: &str) -> ScopeSet {
        ScopeSet(
            space_delimited
                .split_whitespace()
                .map(|scope| match scope {
                    "email" => USERINFO_EMAIL.to_owned(),
                    "profile" => USERINFO_PROFILE.to_owned(),
                    other => other.to_owned(),
                })
                .collect(),
        )
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    pub fn allows(&self, capability: Capability) -> bool {
        capability.scopes().iter().any(|scope| self.contains(scope))
    }

    /// The scopes to ask for so that `integration_type` has every capability.
    pub fn missing_for(&self, integration_type: IntegrationType) -> Vec<String> {
        integration_type
            .capabilities()
            .iter()
            .filter(|capability| !self.allows(**capability))
            .map(|capability| capability.preferred_scope().to_owned())
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Space-delimited, as stored and as Google writes it.
    pub fn to_space_delimited(&self) -> String {
        self.0.iter().cloned().collect::<Vec<_>>().join(" ")
    }
}

/// The state of a connection, as clients see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationStatus {
    Connected,
    MissingScopes,
    NeedsReauth,
    Disconnected,
}

/// Who holds a connection's Google grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// Mailwright, through its own OAuth client (it keeps the refresh
    /// token and refreshes with Google).
    Google,
    /// Clerk, where the person signed in with Google: access tokens come
    /// from Clerk's Backend API for this Clerk user (the JWT's `sub`).
    Clerk { user_id: String },
}

impl TokenSource {
    pub fn as_str(&self) -> &'static str {
        match self {
            TokenSource::Google => "google",
            TokenSource::Clerk { .. } => "clerk",
        }
    }

    /// From the stored name and Clerk user id; `None` for an unknown name
    /// or a Clerk source without its user.
    pub fn parse(name: &str, clerk_user_id: Option<String>) -> Option<TokenSource> {
        match (name, clerk_user_id) {
            ("google", _) => Some(TokenSource::Google),
            ("clerk", Some(user_id)) if !user_id.is_empty() => Some(TokenSource::Clerk { user_id }),
            _ => None,
        }
    }

    pub fn clerk_user_id(&self) -> Option<&str> {
        match self {
            TokenSource::Google => None,
            TokenSource::Clerk { user_id } => Some(user_id),
        }
    }
}

impl IntegrationStatus {
    pub const ALL: [IntegrationStatus; 4] = [
        IntegrationStatus::Connected,
        IntegrationStatus::MissingScopes,
        IntegrationStatus::NeedsReauth,
        IntegrationStatus::Disconnected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationStatus::Connected => "connected",
            IntegrationStatus::MissingScopes => "missing_scopes",
            IntegrationStatus::NeedsReauth => "needs_reauth",
            IntegrationStatus::Disconnected => "disconnected",
        }
    }

    pub fn parse(text: &str) -> Option<IntegrationStatus> {
        match text {
            "connected" => Some(IntegrationStatus::Connected),
            "missing_scopes" => Some(IntegrationStatus::MissingScopes),
            "needs_reauth" => Some(IntegrationStatus::NeedsReauth),
            "disconnected" => Some(IntegrationStatus::Disconnected),
            _ => None,
        }
    }

    /// The status a fresh grant gives.
    pub fn for_grant(granted: &ScopeSet, integration_type: IntegrationType) -> IntegrationStatus {
        if granted.missing_for(integration_type).is_empty() {
            IntegrationStatus::Connected
        } else {
            IntegrationStatus::MissingScopes
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gmail_missing(scopes: &str) -> Vec<String> {
        ScopeSet::parse(scopes).missing_for(IntegrationType::Gmail)
    }

    #[test]
    fn a_full_gmail_grant_misses_nothing() {
        let full = IntegrationType::Gmail.requested_scopes().join(" ");
        assert!(gmail_missing(&full).is_empty());
    }

    #[test]
    fn modify_stands_in_for_read_compose_and_send() {
        assert!(gmail_missing(&format!("openid email profile {GMAIL_MODIFY}")).is_empty());
    }

    #[test]
    fn compose_covers_sending_but_not_reading() {
        let missing = gmail_missing(&format!(
            "openid {USERINFO_EMAIL} {USERINFO_PROFILE} {GMAIL_COMPOSE}"
        ));
        assert_eq!(missing, [GMAIL_READONLY]);
    }

    #[test]
    fn the_seed_case_read_without_compose_is_missing_compose() {
        // Users could read mail but not create drafts, and nobody was told.
        let missing = gmail_missing(&format!(
            "openid {USERINFO_EMAIL} {USERINFO_PROFILE} {GMAIL_READONLY} {GMAIL_SEND}"
        ));
        assert_eq!(missing, [GMAIL_COMPOSE]);
        let granted = ScopeSet::parse(&format!("openid {GMAIL_READONLY}"));
        assert_eq!(
            IntegrationStatus::for_grant(&granted, IntegrationType::Gmail),
            IntegrationStatus::MissingScopes
        );
    }

    #[test]
    fn round_trips() {
        for status in [
            IntegrationStatus::Connected,
            IntegrationStatus::MissingScopes,
            IntegrationStatus::NeedsReauth,
            IntegrationStatus::Disconnected,
        ] {
            assert_eq!(IntegrationStatus::parse(status.as_str()), Some(status));
        }
        for kind in IntegrationType::ALL {
            assert_eq!(IntegrationType::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ScopeSet::parse("b a  a").to_space_delimited(), "a b");
    }
}
