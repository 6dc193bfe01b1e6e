//! OAuth scope names and the Gmail per-method scope/quota tables.

use std::collections::BTreeSet;

pub const OPENID: &str = "openid";
pub const USERINFO_EMAIL: &str = "https://www.googleapis.com/auth/userinfo.email";
pub const USERINFO_PROFILE: &str = "https://www.googleapis.com/auth/userinfo.profile";
pub const MAIL: &str = "https://mail.google.com/";
pub const GMAIL_READONLY: &str = "https://www.googleapis.com/auth/gmail.readonly";
pub const GMAIL_MODIFY: &str = "https://www.googleapis.com/auth/gmail.modify";
pub const GMAIL_COMPOSE: &str = "https://www.googleapis.com/auth/gmail.compose";
pub const GMAIL_SEND: &str = "https://www.googleapis.com/auth/gmail.send";
pub const GMAIL_METADATA: &str = "https://www.googleapis.com/auth/gmail.metadata";
pub const GMAIL_LABELS: &str = "https://www.googleapis.com/auth/gmail.labels";
pub const GMAIL_SETTINGS_BASIC: &str = "https://www.googleapis.com/auth/gmail.settings.basic";
pub const ADDONS_ACTION_COMPOSE: &str =
    "https://www.googleapis.com/auth/gmail.addons.current.action.compose";
pub const ADDONS_MESSAGE_ACTION: &str =
    "https://www.googleapis.com/auth/gmail.addons.current.message.action";
pub const ADDONS_MESSAGE_METADATA: &str =
    "https://www.googleapis.com/auth/gmail.addons.current.message.metadata";
pub const ADDONS_MESSAGE_READONLY: &str =
    "https://www.googleapis.com/auth/gmail.addons.current.message.readonly";

/// Google answers the short sign-in scopes with their full userinfo URLs
/// (`email` → `…/userinfo.email`, `profile` → `…/userinfo.profile`).
pub fn normalize(scope: &str) -> String {
    match scope {
        "email" => USERINFO_EMAIL.to_owned(),
        "profile" => USERINFO_PROFILE.to_owned(),
        other => other.to_owned(),
    }
}

/// Splits a space-delimited `scope` parameter, normalizing and de-duplicating
/// while keeping the caller's order.
pub fn parse_list(raw: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    raw.split([' ', '+'])
        .filter(|s| !s.is_empty())
        .map(normalize)
        .filter(|s| seen.insert(s.clone()))
        .collect()
}

pub fn join(scopes: &BTreeSet<String>) -> String {
    scopes
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The Gmail v1 methods the sandbox serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GmailMethod {
    GetProfile,
    MessagesList,
    MessagesGet,
    MessagesSend,
    MessagesModify,
    DraftsCreate,
    DraftsList,
    DraftsGet,
    DraftsDelete,
    DraftsSend,
    ThreadsGet,
    HistoryList,
    LabelsList,
    LabelsCreate,
    Watch,
    Stop,
    SendAsList,
}

impl GmailMethod {
    pub const ALL: [Self; 17] = [
        Self::GetProfile,
        Self::MessagesList,
        Self::MessagesGet,
        Self::MessagesSend,
        Self::MessagesModify,
        Self::DraftsCreate,
        Self::DraftsList,
        Self::DraftsGet,
        Self::DraftsDelete,
        Self::DraftsSend,
        Self::ThreadsGet,
        Self::HistoryList,
        Self::LabelsList,
        Self::LabelsCreate,
        Self::Watch,
        Self::Stop,
        Self::SendAsList,
    ];

    /// The method called `name` (see [`GmailMethod::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether a call changes the mailbox (`watch`/`stop` change its push
    /// registration): only then can an answer be lost after the change.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Self::MessagesSend
                | Self::MessagesModify
                | Self::DraftsCreate
                | Self::DraftsDelete
                | Self::DraftsSend
                | Self::LabelsCreate
                | Self::Watch
                | Self::Stop
        )
    }

    /// Name used for call counters, fault injection and quota, as in
    /// Google's "Per-method quota usage" table.
    pub fn name(self) -> &'static str {
        match self {
            Self::GetProfile => "getProfile",
            Self::MessagesList => "messages.list",
            Self::MessagesGet => "messages.get",
            Self::MessagesSend => "messages.send",
            Self::MessagesModify => "messages.modify",
            Self::DraftsCreate => "drafts.create",
            Self::DraftsList => "drafts.list",
            Self::DraftsGet => "drafts.get",
            Self::DraftsDelete => "drafts.delete",
            Self::DraftsSend => "drafts.send",
            Self::ThreadsGet => "threads.get",
            Self::HistoryList => "history.list",
            Self::LabelsList => "labels.list",
            Self::LabelsCreate => "labels.create",
            Self::Watch => "watch",
            Self::Stop => "stop",
            Self::SendAsList => "settings.sendAs.list",
        }
    }

    /// Quota units, from developers.google.com/gmail/api/reference/quota
    /// ("Per-method quota usage"). `threads.get`, `watch` and `stop` were cut
    /// off in the copy consulted; their values are from memory of that table.
    pub fn quota_units(self) -> u64 {
        match self {
            Self::GetProfile | Self::LabelsList | Self::SendAsList => 1,
            Self::HistoryList => 2,
            Self::MessagesList
            | Self::MessagesGet
            | Self::MessagesModify
            | Self::DraftsList
            | Self::DraftsGet
            | Self::LabelsCreate => 5,
            Self::DraftsCreate | Self::DraftsDelete | Self::ThreadsGet => 10,
            Self::Stop => 50,
            Self::MessagesSend | Self::DraftsSend | Self::Watch => 100,
        }
    }

    /// Scopes that authorize the method, any one suffices.
    ///
    /// Source: the Gmail discovery document
    /// (`gmail.googleapis.com/$discovery/rest?version=v1`): revision 20260907
    /// as vendored in a public repository for messages.list, messages.get,
    /// messages.send, drafts.create, threads.get; the copy in
    /// googleapis/google-api-go-client (`gmail/v1/gmail-api.json`) for
    /// getProfile, watch, stop, drafts.list/get/delete, history.list and
    /// labels.list.
    pub fn scopes(self) -> &'static [&'static str] {
        match self {
            Self::GetProfile => &[
                MAIL,
                GMAIL_COMPOSE,
                GMAIL_METADATA,
                GMAIL_MODIFY,
                GMAIL_READONLY,
            ],
            Self::MessagesList => &[MAIL, GMAIL_METADATA, GMAIL_MODIFY, GMAIL_READONLY],
            Self::MessagesGet | Self::ThreadsGet => &[
                MAIL,
                ADDONS_MESSAGE_ACTION,
                ADDONS_MESSAGE_METADATA,
                ADDONS_MESSAGE_READONLY,
                GMAIL_METADATA,
                GMAIL_MODIFY,
                GMAIL_READONLY,
            ],
            Self::MessagesSend => &[
                MAIL,
                ADDONS_ACTION_COMPOSE,
                GMAIL_COMPOSE,
                GMAIL_MODIFY,
                GMAIL_SEND,
            ],
            Self::DraftsCreate | Self::DraftsDelete | Self::DraftsSend => {
                &[MAIL, ADDONS_ACTION_COMPOSE, GMAIL_COMPOSE, GMAIL_MODIFY]
            }
            Self::DraftsList | Self::DraftsGet => {
                &[MAIL, GMAIL_COMPOSE, GMAIL_MODIFY, GMAIL_READONLY]
            }
            Self::HistoryList | Self::Watch | Self::Stop => {
                &[MAIL, GMAIL_METADATA, GMAIL_MODIFY, GMAIL_READONLY]
            }
            // google-api-python-client 2.202.0's bundled `gmail.v1.json`
            // (revision 20261005).
            Self::SendAsList => &[MAIL, GMAIL_MODIFY, GMAIL_READONLY, GMAIL_SETTINGS_BASIC],
            Self::LabelsList => &[
                MAIL,
                GMAIL_LABELS,
                GMAIL_METADATA,
                GMAIL_MODIFY,
                GMAIL_READONLY,
            ],
            // The revision 20260907 copy (`users.messages.modify`) and
            // google-api-go-client's `gmail/v1/gmail-api.json` agree.
            Self::MessagesModify => &[MAIL, GMAIL_MODIFY],
            // google-api-go-client's `gmail/v1/gmail-api.json`
            // (`gmail.users.labels.create`).
            Self::LabelsCreate => &[MAIL, GMAIL_LABELS, GMAIL_MODIFY],
        }
    }

    pub fn is_authorized_by(self, granted: &BTreeSet<String>) -> bool {
        self.scopes().iter().any(|s| granted.contains(*s))
    }

    /// True when the only scope that lets this call through is
    /// `gmail.metadata`, which Google restricts further (no `q`, no full/raw).
    pub fn only_metadata(self, granted: &BTreeSet<String>) -> bool {
        self.scopes()
            .iter()
            .filter(|s| granted.contains(**s))
            .all(|s| *s == GMAIL_METADATA)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_sign_in_scopes_become_userinfo_urls() {
        assert_eq!(
            parse_list("openid email profile email"),
            vec![OPENID, USERINFO_EMAIL, USERINFO_PROFILE]
        );
    }

    #[test]
    fn every_method_is_found_by_its_name() {
        for method in GmailMethod::ALL {
            assert_eq!(GmailMethod::from_name(method.name()), Some(method));
        }
        assert_eq!(GmailMethod::from_name("oauth.token"), None);
    }

    #[test]
    fn compose_does_not_cover_messages_get_but_covers_send() {
        let granted: BTreeSet<String> = [GMAIL_COMPOSE.to_owned()].into();
        assert!(!GmailMethod::MessagesGet.is_authorized_by(&granted));
        assert!(!GmailMethod::MessagesList.is_authorized_by(&granted));
        assert!(GmailMethod::MessagesSend.is_authorized_by(&granted));
        assert!(GmailMethod::DraftsCreate.is_authorized_by(&granted));
        let send_only: BTreeSet<String> = [GMAIL_SEND.to_owned()].into();
        assert!(!GmailMethod::DraftsCreate.is_authorized_by(&send_only));
    }

    #[test]
    fn labels_scope_creates_labels_but_cannot_relabel_messages() {
        let labels: BTreeSet<String> = [GMAIL_LABELS.to_owned()].into();
        assert!(GmailMethod::LabelsCreate.is_authorized_by(&labels));
        assert!(!GmailMethod::MessagesModify.is_authorized_by(&labels));
        let read_and_send: BTreeSet<String> =
            [GMAIL_READONLY.to_owned(), GMAIL_SEND.to_owned()].into();
        assert!(!GmailMethod::LabelsCreate.is_authorized_by(&read_and_send));
        assert!(!GmailMethod::MessagesModify.is_authorized_by(&read_and_send));
        assert!(GmailMethod::MessagesModify.is_write() && GmailMethod::LabelsCreate.is_write());
    }
}
