//! The sandbox's in-memory world: clients, accounts, grants, tokens,
//! mailboxes, injected faults and counters. Behind one `Mutex`; no lock is
//! ever held across an `.await`.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};

use crate::chaos::ChaosState;
use crate::config::{OAuthClient, SandboxConfig};
use crate::control::Fault;
use crate::gmail::mailbox::Mailbox;

#[derive(Clone, Debug)]
pub struct Account {
    pub email: String,
    pub name: String,
    /// Google's stable numeric subject id.
    pub sub: String,
}

impl Account {
    pub fn given_name(&self) -> &str {
        self.name.split_whitespace().next().unwrap_or(&self.name)
    }
}

#[derive(Clone, Debug)]
pub struct AuthCode {
    pub client_id: String,
    pub email: String,
    pub redirect_uri: String,
    pub scopes: BTreeSet<String>,
    pub code_challenge: Option<(String, PkceMethod)>,
    pub offline: bool,
    pub prompt_consent: bool,
    pub nonce: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub used: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PkceMethod {
    S256,
    Plain,
}

/// What a user has granted one client, accumulated across consents.
#[derive(Clone, Debug, Default)]
pub struct Grant {
    pub scopes: BTreeSet<String>,
    /// Google hands out a refresh token only on the first offline consent
    /// unless `prompt=consent` forces a new one.
    pub refresh_issued: bool,
}

#[derive(Clone, Debug)]
pub struct AccessToken {
    pub client_id: String,
    pub email: String,
    pub scopes: BTreeSet<String>,
    pub expires_at: DateTime<Utc>,
    pub revoked: bool,
}

#[derive(Clone, Debug)]
pub struct RefreshToken {
    pub client_id: String,
    pub email: String,
    pub scopes: BTreeSet<String>,
    pub revoked: bool,
}

pub type GrantKey = (String, String);

#[derive(Default)]
pub struct State {
    pub clients: BTreeMap<String, OAuthClient>,
    /// In creation order: the first is the consent page's default.
    pub accounts: Vec<Account>,
    pub codes: HashMap<String, AuthCode>,
    pub grants: HashMap<GrantKey, Grant>,
    pub access_tokens: HashMap<String, AccessToken>,
    pub refresh_tokens: HashMap<String, RefreshToken>,
    /// Keyed by lower-cased email.
    pub mailboxes: HashMap<String, Mailbox>,
    pub faults: HashMap<String, VecDeque<Fault>>,
    /// Per method: answers to hold back after the call took effect (how a
    /// test kills a worker between "Gmail accepted" and "we recorded it").
    pub stalled_answers: HashMap<String, VecDeque<std::time::Duration>>,
    /// Seeded random failures of Gmail calls, and what they injected.
    pub chaos: ChaosState,
    pub calls: BTreeMap<String, u64>,
    pub quota: BTreeMap<String, u64>,
    pub clock_offset: Duration,
    pub last_history_id: u64,
    /// Where watched mailboxes' changes are pushed, if anywhere.
    pub push_subscription: Option<crate::pubsub::PushSubscription>,
    pub publisher_running: bool,
    pub push_deliveries: VecDeque<crate::pubsub::PushDelivery>,
    /// Clerk users and the sandbox account each signed in with.
    pub clerk_users: HashMap<String, String>,
    pub id_counter: u64,
}

impl State {
    pub fn new(config: SandboxConfig) -> Self {
        let mut state = State {
            last_history_id: 100_000,
            ..State::default()
        };
        for client in config.clients {
            state.clients.insert(client.client_id.clone(), client);
        }
        for account in config.accounts {
            state.ensure_account(&account.email, account.name.as_deref());
        }
        state
    }

    pub fn now(&self) -> DateTime<Utc> {
        let real = Utc::now();
        real.checked_add_signed(self.clock_offset).unwrap_or(real)
    }

    pub fn count_call(&mut self, method: &str) {
        *self.calls.entry(method.to_owned()).or_default() += 1;
    }

    pub fn take_fault(&mut self, method: &str) -> Option<Fault> {
        let queue = self.faults.get_mut(method)?;
        let fault = queue.pop_front();
        if queue.is_empty() {
            self.faults.remove(method);
        }
        fault
    }

    pub fn take_stalled_answer(&mut self, method: &str) -> Option<std::time::Duration> {
        let queue = self.stalled_answers.get_mut(method)?;
        let stall = queue.pop_front();
        if queue.is_empty() {
            self.stalled_answers.remove(method);
        }
        stall
    }

    pub fn next_id(&mut self) -> u64 {
        self.id_counter += 1;
        self.id_counter
    }

    /// History ids grow but, as Google documents, "are not contiguous with
    /// random gaps in between valid IDs".
    pub fn next_history_id(&mut self) -> u64 {
        self.last_history_id += 1 + fastrand::u64(0..3);
        self.last_history_id
    }

    /// A fresh Gmail-style message id: 16 hex digits, time-ordered.
    pub fn new_message_id(&mut self) -> String {
        let ms = u64::try_from(self.now().timestamp_millis()).unwrap_or(0);
        let counter = self.next_id() & 0xfffff;
        format!("{:016x}", (ms << 20) | counter)
    }

    pub fn account(&self, email: &str) -> Option<&Account> {
        self.accounts
            .iter()
            .find(|a| a.email.eq_ignore_ascii_case(email))
    }

    /// Returns the account, creating it (and its mailbox) when unknown.
    pub fn ensure_account(&mut self, email: &str, name: Option<&str>) -> Account {
        if let Some(existing) = self.account(email) {
            return existing.clone();
        }
        let email = email.trim().to_owned();
        let name = name.map(str::to_owned).unwrap_or_else(|| {
            let local = email.split('@').next().unwrap_or(&email);
            local
                .split(['.', '_', '-'])
                .filter(|w| !w.is_empty())
                .map(|w| {
                    let mut chars = w.chars();
                    match chars.next() {
                        Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
                        None => String::new(),
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        });
        let sub = format!("10{:019}", fastrand::u64(..10_000_000_000_000_000_000));
        let account = Account { email, name, sub };
        self.accounts.push(account.clone());
        let history_id = self.next_history_id();
        self.mailboxes
            .entry(account.email.to_ascii_lowercase())
            .or_insert_with(|| Mailbox::new(history_id));
        account
    }

    pub fn mailbox(&self, email: &str) -> Option<&Mailbox> {
        self.mailboxes.get(&email.to_ascii_lowercase())
    }

    pub fn mailbox_mut(&mut self, email: &str) -> Option<&mut Mailbox> {
        self.mailboxes.get_mut(&email.to_ascii_lowercase())
    }

    /// Revokes a user's grant to a client and every token that came from it.
    pub fn revoke_grant(&mut self, client_id: &str, email: &str) -> bool {
        let key = (client_id.to_owned(), email.to_ascii_lowercase());
        let mut found = self.grants.remove(&key).is_some();
        let same = |c: &str, e: &str| c == client_id && e.eq_ignore_ascii_case(email);
        for token in self.access_tokens.values_mut() {
            if same(&token.client_id, &token.email) && !token.revoked {
                token.revoked = true;
                found = true;
            }
        }
        for token in self.refresh_tokens.values_mut() {
            if same(&token.client_id, &token.email) && !token.revoked {
                token.revoked = true;
                found = true;
            }
        }
        for code in self.codes.values_mut() {
            if same(&code.client_id, &code.email) {
                code.used = true;
            }
        }
        found
    }
}

pub fn grant_key(client_id: &str, email: &str) -> GrantKey {
    (client_id.to_owned(), email.to_ascii_lowercase())
}

/// A random token body from URL-safe characters.
pub fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..len)
        .map(|_| char::from(ALPHABET[fastrand::usize(..ALPHABET.len())]))
        .collect()
}
