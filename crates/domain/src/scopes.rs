//! OAuth scopes, what each integration type needs, and which needed scopes a
//! grant lacks. Scopes are written as the provider writes them in its token
//! response, and that is how clients see them: Google's as full URLs (plus
//! `openid`), Microsoft's Graph permissions by short name (`Mail.Send`, plus
//! `openid`, `email`, `profile`).

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

/// Microsoft identity platform scopes (OpenID Connect's, and Graph's
/// delegated permissions). Microsoft compares them case-insensitively.
pub const MS_OFFLINE_ACCESS: &str = "offline_access";
pub const MS_EMAIL: &str = "email";
pub const MS_PROFILE: &str = "profile";
pub const MS_USER_READ: &str = "User.Read";
pub const MS_MAIL_READ: &str = "Mail.Read";
pub const MS_MAIL_READWRITE: &str = "Mail.ReadWrite";
pub const MS_MAIL_SEND: &str = "Mail.Send";

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationType {
    Gmail,
    Calendar,
    /// A mailbox reached by IMAP and SMTP with a password: no scopes (the
    /// password allows everything a mailbox needs).
    Imap,
    /// A Microsoft 365 or Outlook.com mailbox, through Microsoft Graph.
    Outlook,
}

impl IntegrationType {
    pub const ALL: [IntegrationType; 4] = [
        IntegrationType::Gmail,
        IntegrationType::Calendar,
        IntegrationType::Imap,
        IntegrationType::Outlook,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationType::Gmail => "gmail",
            IntegrationType::Calendar => "calendar",
            IntegrationType::Imap => "imap",
            IntegrationType::Outlook => "outlook",
        }
    }

    /// Who holds the account: `google`, `microsoft` or `imap` (the
    /// `provider` column and field).
    pub fn provider(self) -> &'static str {
        match self {
            IntegrationType::Gmail | IntegrationType::Calendar => "google",
            IntegrationType::Imap => "imap",
            IntegrationType::Outlook => "microsoft",
        }
    }

    /// The provider's name for people: "Google", "Microsoft", "the mail
    /// server".
    pub fn provider_name(self) -> &'static str {
        match self {
            IntegrationType::Gmail | IntegrationType::Calendar => "Google",
            IntegrationType::Outlook => "Microsoft",
            IntegrationType::Imap => "the mail server",
        }
    }

    /// A grant's space-delimited scopes, as this type's provider writes them.
    pub fn parse_scopes(self, space_delimited: &str) -> ScopeSet {
        match self {
            IntegrationType::Outlook => ScopeSet::verbatim(space_delimited),
            _ => ScopeSet::parse(space_delimited),
        }
    }

    /// The scopes that allow `capability` on a connection of this type
    /// (first: the one to ask for); none where the provider has no such
    /// thing.
    pub fn scopes_for(self, capability: Capability) -> &'static [&'static str] {
        match self {
            IntegrationType::Outlook => capability.microsoft_scopes(),
            IntegrationType::Imap => &[],
            IntegrationType::Gmail | IntegrationType::Calendar => capability.scopes(),
        }
    }

    /// The scope to ask for so that a connection of this type may do
    /// `capability`.
    pub fn preferred_scope(self, capability: Capability) -> &'static str {
        self.scopes_for(capability)
            .first()
            .copied()
            .unwrap_or_else(|| capability.preferred_scope())
    }

    /// Whether a connection of this type holding `granted` allows
    /// `capability`: Google's by their scopes; an IMAP mailbox's password
    /// allows what a mailbox does (labels and calendars are Google's).
    pub fn allows(self, granted: &ScopeSet, capability: Capability) -> bool {
        match self {
            IntegrationType::Gmail | IntegrationType::Calendar => granted.allows(capability),
            IntegrationType::Outlook => capability.microsoft_scopes().iter().any(|wanted| {
                granted
                    .iter()
                    .any(|scope| scope.eq_ignore_ascii_case(wanted))
            }),
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
        matches!(
            self,
            IntegrationType::Gmail | IntegrationType::Imap | IntegrationType::Outlook
        )
    }

    pub fn parse(text: &str) -> Option<IntegrationType> {
        match text {
            "gmail" => Some(IntegrationType::Gmail),
            "calendar" => Some(IntegrationType::Calendar),
            "imap" => Some(IntegrationType::Imap),
            "outlook" => Some(IntegrationType::Outlook),
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
            IntegrationType::Outlook => &[
                Capability::Identity,
                Capability::Email,
                Capability::Profile,
                Capability::ReadMail,
                Capability::Draft,
                Capability::Send,
            ],
            IntegrationType::Imap => &[],
        }
    }

    /// The scopes to ask for when connecting.
    pub fn requested_scopes(self) -> Vec<&'static str> {
        let mut scopes: Vec<&'static str> = self
            .capabilities()
            .iter()
            .map(|capability| self.preferred_scope(*capability))
            .collect();
        if self == IntegrationType::Outlook {
            // A refresh token (never listed in the answer's `scope`), and the
            // ID token's name claim.
            scopes.insert(0, MS_OFFLINE_ACCESS);
            scopes.insert(3, MS_PROFILE);
        }
        scopes.dedup();
        scopes
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
    /// ("create drafts (gmail.compose)", "send mail as you (Mail.Send)"), or
    /// the short name alone for a scope Mailwright does not ask for.
    pub fn describe_scope(scope: &str) -> String {
        let short = scope.rsplit('/').next().unwrap_or(scope);
        match Capability::ALL.into_iter().find(|capability| {
            capability.preferred_scope() == scope
                || capability
                    .microsoft_scopes()
                    .first()
                    .is_some_and(|wanted| wanted.eq_ignore_ascii_case(scope))
        }) {
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

    /// Google's scope to ask for.
    pub fn preferred_scope(self) -> &'static str {
        self.scopes()[0]
    }

    /// The Microsoft identity platform's scopes that allow the capability
    /// (first: the one to ask for). `User.Read` stands for the profile:
    /// Graph's `/me` is how Mailwright learns who the account is.
    pub fn microsoft_scopes(self) -> &'static [&'static str] {
        match self {
            Capability::Identity => &[OPENID],
            Capability::Email => &[MS_EMAIL],
            Capability::Profile => &[MS_USER_READ],
            Capability::ReadMail => &[MS_MAIL_READWRITE, MS_MAIL_READ],
            Capability::Draft => &[MS_MAIL_READWRITE],
            Capability::Send => &[MS_MAIL_SEND],
            Capability::Calendar | Capability::Labels => &[],
        }
    }

    /// In words, for people: "read your mail".
    pub fn describe(self) -> &'static str {
        match self {
            Capability::Identity => "know which account this is",
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
    /// Space-delimited scopes, kept as they are (Microsoft's).
    pub fn verbatim(space_delimited: &str) -> ScopeSet {
        ScopeSet(
            space_delimited
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        )
    }

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
            .filter(|capability| !integration_type.allows(self, **capability))
            .map(|capability| integration_type.preferred_scope(*capability).to_owned())
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

/// Who holds a connection's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// Mailwright itself: the refresh token of its own OAuth client at
    /// Google or Microsoft, or a mailbox's password. Stored as `google`,
    /// the name from when Google was the only provider.
    Mailwright,
    /// Clerk, where the person signed in with Google: access tokens come
    /// from Clerk's Backend API for this Clerk user (the JWT's `sub`).
    Clerk { user_id: String },
}

impl TokenSource {
    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            TokenSource::Mailwright => "google",
            TokenSource::Clerk { .. } => "clerk",
        }
    }

    /// From the stored name and Clerk user id; `None` for an unknown name
    /// or a Clerk source without its user.
    pub fn parse(name: &str, clerk_user_id: Option<String>) -> Option<TokenSource> {
        match (name, clerk_user_id) {
            ("google", _) => Some(TokenSource::Mailwright),
            ("clerk", Some(user_id)) if !user_id.is_empty() => Some(TokenSource::Clerk { user_id }),
            _ => None,
        }
    }

    pub fn clerk_user_id(&self) -> Option<&str> {
        match self {
            TokenSource::Mailwright => None,
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
    fn an_outlook_grant_is_read_as_microsoft_writes_it() {
        let asked = IntegrationType::Outlook.requested_scopes();
        assert_eq!(
            asked,
            [
                "offline_access",
                "openid",
                "email",
                "profile",
                "User.Read",
                "Mail.ReadWrite",
                "Mail.Send"
            ]
        );
        // What Microsoft answers: no offline_access, any case.
        let full = IntegrationType::Outlook
            .parse_scopes("mail.readwrite Mail.Send openid User.Read profile email");
        assert!(full.missing_for(IntegrationType::Outlook).is_empty());
        assert!(full.contains("email"), "not turned into Google's URL");
        let no_send =
            IntegrationType::Outlook.parse_scopes("Mail.ReadWrite openid User.Read profile email");
        assert_eq!(no_send.missing_for(IntegrationType::Outlook), ["Mail.Send"]);
        assert_eq!(
            IntegrationStatus::for_grant(&no_send, IntegrationType::Outlook),
            IntegrationStatus::MissingScopes
        );
        // Gmail's scopes allow nothing on Outlook, and the other way round.
        let gmail_full = ScopeSet::parse(&IntegrationType::Gmail.requested_scopes().join(" "));
        assert!(!IntegrationType::Outlook.allows(&gmail_full, Capability::Send));
        assert!(!IntegrationType::Gmail.allows(&full, Capability::Send));
        assert_eq!(
            Capability::describe_scope("Mail.Send"),
            "send mail as you (Mail.Send)"
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
