//! Brute-force protection for the password forms (sign-in and first-run
//! setup), in memory: per account, wrong passwords lock it out for a while,
//! doubling with each further wrong one up to a cap; per client address, a
//! token bucket of attempts a minute. A refusal says how long to wait.
//!
//! Both maps are capped ([`MAX_TRACKED`] entries each): when full, entries
//! that remember nothing are dropped first, then the least recently seen,
//! so strangers cannot grow them without bound. The counts are per process
//! (replicas each keep their own), which is enough to make guessing slow.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use crate::app::AppState;

/// Entries each map keeps at most (an entry is well under 100 bytes).
pub const MAX_TRACKED: usize = 10_000;
/// The first lockout of an account (shorter if the cap is shorter); each
/// further wrong password doubles it, up to [`SigninLimits::lockout_cap`].
pub const FIRST_LOCKOUT: Duration = Duration::from_secs(60);

/// The limits, from the settings `MAILWRIGHT_SIGNIN_*`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SigninLimits {
    /// Wrong passwords for one account before it is locked out.
    pub max_failures: u32,
    /// The longest lockout; also how long an account's wrong passwords are
    /// remembered (after the last one, or after its lockout ends).
    pub lockout_cap: Duration,
    /// Attempts one client address may make a minute (a successful one is
    /// given back), in bursts of up to as many.
    pub attempts_per_minute: u32,
}

impl Default for SigninLimits {
    fn default() -> Self {
        SigninLimits {
            max_failures: 5,
            lockout_cap: Duration::from_secs(15 * 60),
            attempts_per_minute: 20,
        }
    }
}

impl SigninLimits {
    /// How long an account with `failures` wrong passwords (at least
    /// `max_failures`) stays locked after the last one.
    fn lockout_for(&self, failures: u32) -> Duration {
        let first = FIRST_LOCKOUT.min(self.lockout_cap);
        let doublings = failures.saturating_sub(self.max_failures).min(20);
        first.saturating_mul(1 << doublings).min(self.lockout_cap)
    }

    fn refill_per_second(&self) -> f64 {
        f64::from(self.attempts_per_minute) / 60.0
    }
}

/// Why an attempt was refused, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub reason: RefusedBecause,
    pub retry_after: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedBecause {
    /// Too many wrong passwords for this account.
    Account,
    /// Too many attempts from this client address.
    Address,
}

impl Refused {
    /// Whole seconds, at least 1: the `Retry-After` value.
    pub fn retry_after_seconds(&self) -> u64 {
        retry_after_seconds(self.retry_after)
    }

    /// The refusal in words for the person at the form.
    pub fn message(&self) -> String {
        let wait = in_words(self.retry_after);
        match self.reason {
            RefusedBecause::Account => format!(
                "Too many wrong passwords for this account. For its safety, sign-in is paused: try again in {wait}."
            ),
            RefusedBecause::Address => {
                format!("Too many sign-in attempts from your network. Try again in {wait}.")
            }
        }
    }
}

/// Whole seconds, rounded up, at least 1.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

fn in_words(wait: Duration) -> String {
    let seconds = retry_after_seconds(wait);
    if seconds < 90 {
        format!("{seconds} second{}", if seconds == 1 { "" } else { "s" })
    } else {
        format!("{} minutes", seconds.div_ceil(60))
    }
}

/// A client address as counted: IPv4 addresses one by one, IPv6 by their
/// /64 (one host usually has a whole /64 to pick from).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum AddressKey {
    V4(u32),
    V6(u64),
    /// The peer address is not known (no connection info): one shared bucket.
    Unknown,
}

impl AddressKey {
    fn of(address: Option<IpAddr>) -> AddressKey {
        match address {
            None => AddressKey::Unknown,
            Some(IpAddr::V4(v4)) => AddressKey::V4(u32::from(v4)),
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressKey::V4(u32::from(v4)),
                None => AddressKey::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// An account as counted: a digest of the normalised email, so an entry's
/// size does not depend on what a stranger typed.
type AccountKey = [u8; 32];

fn account_key(account: &str) -> AccountKey {
    Sha256::digest(account.trim().to_lowercase().as_bytes()).into()
}

#[derive(Debug)]
struct Account {
    failures: u32,
    last_failure: Option<Instant>,
    locked_until: Option<Instant>,
    /// Attempts admitted and not finished yet: counted against the
    /// allowance, so a burst of concurrent guesses cannot slip past it.
    in_flight: u32,
    seen: Instant,
}

impl Account {
    fn new(now: Instant) -> Account {
        Account {
            failures: 0,
            last_failure: None,
            locked_until: None,
            in_flight: 0,
            seen: now,
        }
    }

    /// When the account's wrong passwords are forgotten: `lockout_cap`
    /// after the last one, counted from the end of its lockout if any.
    fn forgotten_at(&self, limits: &SigninLimits) -> Option<Instant> {
        let quiet_since = self.locked_until.or(self.last_failure)?;
        Some(quiet_since + limits.lockout_cap)
    }

    fn forget_old(&mut self, now: Instant, limits: &SigninLimits) {
        if self.forgotten_at(limits).is_some_and(|at| now >= at) {
            self.failures = 0;
            self.last_failure = None;
            self.locked_until = None;
        }
    }

    fn remembers_nothing(&self, now: Instant, limits: &SigninLimits) -> bool {
        self.in_flight == 0 && self.forgotten_at(limits).is_none_or(|at| now >= at)
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant, limits: &SigninLimits) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * limits.refill_per_second())
            .min(f64::from(limits.attempts_per_minute));
        self.updated = now;
    }

    fn is_full(&self, now: Instant, limits: &SigninLimits) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens + elapsed * limits.refill_per_second() >= f64::from(limits.attempts_per_minute)
    }
}

#[derive(Default)]
struct Counts {
    accounts: HashMap<AccountKey, Account>,
    addresses: HashMap<AddressKey, Bucket>,
}

/// The sign-in limiter of this process (one, in the application state).
pub struct SigninThrottle {
    limits: SigninLimits,
    counts: Mutex<Counts>,
}

impl SigninThrottle {
    pub fn new(limits: SigninLimits) -> Arc<SigninThrottle> {
        Arc::new(SigninThrottle {
            limits,
            counts: Mutex::new(Counts::default()),
        })
    }

    /// Admit an attempt from `address` (for `account`, an email as typed,
    /// when there is one), or say how long to wait. Finish the attempt with
    /// [`Attempt::succeeded`] or [`Attempt::failed`]; dropping it unfinished
    /// (an error, a cancelled request) counts it against the address only.
    pub fn begin(
        self: &Arc<Self>,
        address: Option<IpAddr>,
        account: Option<&str>,
    ) -> Result<Attempt, Refused> {
        self.begin_at(Instant::now(), address, account)
    }

    fn begin_at(
        self: &Arc<Self>,
        now: Instant,
        address: Option<IpAddr>,
        account: Option<&str>,
    ) -> Result<Attempt, Refused> {
        let limits = &self.limits;
        let address = AddressKey::of(address);
        let account = account.map(account_key);
        let mut counts = self.counts.lock().expect("sign-in throttle lock");
        let Counts {
            accounts,
            addresses,
        } = &mut *counts;

        if let Some(key) = account {
            if !accounts.contains_key(&key) {
                make_room(
                    accounts,
                    |entry| entry.remembers_nothing(now, limits),
                    |entry| entry.seen,
                );
            }
            let entry = accounts.entry(key).or_insert_with(|| Account::new(now));
            entry.seen = now;
            entry.forget_old(now, limits);
            if let Some(until) = entry.locked_until.filter(|until| *until > now) {
                return Err(Refused {
                    reason: RefusedBecause::Account,
                    retry_after: until - now,
                });
            }
            // Below the limit, the rest of the allowance; at or past it (a
            // lockout just ended), one attempt at a time.
            let allowance = limits.max_failures.saturating_sub(entry.failures).max(1);
            if entry.in_flight >= allowance {
                let pending = (entry.failures + entry.in_flight).max(limits.max_failures);
                return Err(Refused {
                    reason: RefusedBecause::Account,
                    retry_after: limits.lockout_for(pending),
                });
            }
        }

        if !addresses.contains_key(&address) {
            make_room(
                addresses,
                |bucket| bucket.is_full(now, limits),
                |bucket| bucket.updated,
            );
        }
        let bucket = addresses.entry(address).or_insert_with(|| Bucket {
            tokens: f64::from(limits.attempts_per_minute),
            updated: now,
        });
        bucket.refill(now, limits);
        if bucket.tokens < 1.0 {
            return Err(Refused {
                reason: RefusedBecause::Address,
                retry_after: Duration::from_secs_f64(
                    (1.0 - bucket.tokens) / limits.refill_per_second(),
                ),
            });
        }
        bucket.tokens -= 1.0;
        if let Some(key) = account
            && let Some(entry) = accounts.get_mut(&key)
        {
            entry.in_flight += 1;
        }
        Ok(Attempt {
            throttle: Arc::clone(self),
            address,
            account,
            finished: false,
        })
    }

    fn finish(&self, attempt: &Attempt, outcome: Outcome, now: Instant) {
        let limits = &self.limits;
        let mut counts = self.counts.lock().expect("sign-in throttle lock");
        let Counts {
            accounts,
            addresses,
        } = &mut *counts;
        if let Some(key) = attempt.account {
            if outcome == Outcome::Failed && !accounts.contains_key(&key) {
                // Evicted meanwhile: start counting again.
                make_room(
                    accounts,
                    |entry| entry.remembers_nothing(now, limits),
                    |entry| entry.seen,
                );
                accounts.insert(key, Account::new(now));
            }
            if let Some(entry) = accounts.get_mut(&key) {
                entry.in_flight = entry.in_flight.saturating_sub(1);
                match outcome {
                    Outcome::Succeeded => {
                        entry.failures = 0;
                        entry.last_failure = None;
                        entry.locked_until = None;
                    }
                    Outcome::Failed => {
                        entry.forget_old(now, limits);
                        entry.failures = entry.failures.saturating_add(1);
                        entry.last_failure = Some(now);
                        if entry.failures >= limits.max_failures {
                            entry.locked_until = Some(now + limits.lockout_for(entry.failures));
                        }
                    }
                    Outcome::Abandoned => {}
                }
            }
        }
        if outcome == Outcome::Succeeded
            && let Some(bucket) = addresses.get_mut(&attempt.address)
        {
            bucket.refill(now, limits);
            bucket.tokens = (bucket.tokens + 1.0).min(f64::from(limits.attempts_per_minute));
        }
    }

    #[cfg(test)]
    fn sizes(&self) -> (usize, usize) {
        let counts = self.counts.lock().unwrap();
        (counts.accounts.len(), counts.addresses.len())
    }
}

/// Before adding a key to a full map: drop the entries that remember
/// nothing; if that is not enough, the least recently seen tenth.
fn make_room<K: Hash + Eq + Copy, V>(
    map: &mut HashMap<K, V>,
    idle: impl Fn(&V) -> bool,
    seen: impl Fn(&V) -> Instant,
) {
    if map.len() < MAX_TRACKED {
        return;
    }
    map.retain(|_, entry| !idle(entry));
    if map.len() < MAX_TRACKED {
        return;
    }
    let mut by_age: Vec<(Instant, K)> =
        map.iter().map(|(key, entry)| (seen(entry), *key)).collect();
    let cut = MAX_TRACKED / 10;
    by_age.select_nth_unstable_by_key(cut, |(seen, _)| *seen);
    for (_, key) in &by_age[..cut] {
        map.remove(key);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Succeeded,
    Failed,
    Abandoned,
}

/// An admitted attempt; see [`SigninThrottle::begin`].
pub struct Attempt {
    throttle: Arc<SigninThrottle>,
    address: AddressKey,
    account: Option<AccountKey>,
    finished: bool,
}

impl Attempt {
    /// The password was right: the account's wrong passwords are forgotten
    /// and the address gets its attempt back.
    pub fn succeeded(mut self) {
        self.finish(Outcome::Succeeded, Instant::now());
    }

    /// The password was wrong.
    pub fn failed(mut self) {
        self.finish(Outcome::Failed, Instant::now());
    }

    fn finish(&mut self, outcome: Outcome, now: Instant) {
        if !self.finished {
            self.finished = true;
            self.throttle.finish(self, outcome, now);
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        self.finish(Outcome::Abandoned, Instant::now());
    }
}

/// Proxies whose `X-Forwarded-For` is believed (`MAILWRIGHT_TRUSTED_PROXIES`):
/// addresses or CIDR ranges. Empty by default: the peer address is the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// A comma-separated list such as `10.0.0.0/8, 127.0.0.1, fd00::/8`.
    pub fn parse(text: &str) -> Result<TrustedProxies, String> {
        let mut ranges = Vec::new();
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let (address, bits) = match item.split_once('/') {
                Some((address, bits)) => (address, Some(bits)),
                None => (item, None),
            };
            let address: IpAddr = address.parse().map_err(|_| {
                format!("`{item}` is not an IP address or range such as 10.0.0.0/8 or 127.0.0.1")
            })?;
            let max = if address.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => max,
                Some(bits) => bits
                    .parse::<u8>()
                    .ok()
                    .filter(|bits| *bits <= max)
                    .ok_or_else(|| format!("`{item}` has a prefix length above {max}"))?,
            };
            ranges.push((address, bits));
        }
        Ok(TrustedProxies(ranges))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn contains(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|(range, bits)| match (range, address) {
            (IpAddr::V4(range), IpAddr::V4(address)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(*bits)).unwrap_or(0);
                u32::from(*range) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(range), IpAddr::V6(address)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(*bits)).unwrap_or(0);
                u128::from(*range) & mask == u128::from(address) & mask
            }
            _ => false,
        })
    }

    /// The client's address: the peer, or, when the peer is a trusted
    /// proxy, the right-most `X-Forwarded-For` address that is not one.
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect();
        let mut client = peer;
        for hop in forwarded.into_iter().rev() {
            let Ok(address) = hop.trim().parse::<IpAddr>() else {
                break;
            };
            client = address;
            if !self.contains(address) {
                break;
            }
        }
        client
    }
}

/// The address a request comes from, as the limits count it: the TCP peer
/// (see [`TrustedProxies`]); `None` when the server was started without
/// connection info.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| address.ip());
        Ok(ClientAddress(peer.map(|peer| {
            state
                .config
                .trusted_proxies
                .client_address(peer, &parts.headers)
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    impl Attempt {
        fn failed_at(mut self, now: Instant) {
            self.finish(Outcome::Failed, now);
        }

        fn succeeded_at(mut self, now: Instant) {
            self.finish(Outcome::Succeeded, now);
        }
    }

    fn throttle() -> Arc<SigninThrottle> {
        SigninThrottle::new(SigninLimits::default())
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn wrong_passwords_lock_an_account_with_doubling_capped_lockouts() {
        let throttle = throttle();
        let start = Instant::now();
        let mut now = start;
        // Each attempt from its own address: only the account limit applies.
        let attempt = |now: Instant, n: u32| {
            throttle.begin_at(
                now,
                ip(&format!("10.0.{}.{}", n / 250, n % 250)),
                Some("Ada@Example.com"),
            )
        };
        for n in 0..5 {
            attempt(now, n).unwrap().failed_at(now);
        }
        let refused = attempt(now, 5).err().unwrap();
        assert_eq!(refused.reason, RefusedBecause::Account);
        assert_eq!(refused.retry_after, MINUTE);
        assert!(
            refused.message().contains("60 seconds"),
            "{}",
            refused.message()
        );
        // Case and spaces do not make another account.
        assert!(
            throttle
                .begin_at(now, ip("10.9.9.9"), Some(" ada@example.com"))
                .is_err()
        );

        let mut expected = Vec::new();
        for n in 6..12 {
            now += refused_for(&throttle, now);
            attempt(now, n).unwrap().failed_at(now);
            expected.push(refused_for(&throttle, now));
        }
        assert_eq!(
            expected,
            [2, 4, 8, 15, 15, 15].map(|minutes| minutes * MINUTE),
            "doubling, capped at 15 minutes"
        );

        // The right password after a lockout resets the count.
        now += refused_for(&throttle, now);
        attempt(now, 20).unwrap().succeeded_at(now);
        for n in 0..4 {
            attempt(now, 30 + n).unwrap().failed_at(now);
        }
        assert!(attempt(now, 40).is_ok(), "the count started again");
    }

    fn refused_for(throttle: &Arc<SigninThrottle>, now: Instant) -> Duration {
        throttle
            .begin_at(now, ip("10.200.0.1"), Some("ada@example.com"))
            .err()
            .map_or(Duration::ZERO, |refused| refused.retry_after)
    }

    #[test]
    fn wrong_passwords_are_forgotten_after_the_cap() {
        let throttle = throttle();
        let now = Instant::now();
        for n in 0..4 {
            throttle
                .begin_at(now, ip(&format!("10.0.0.{n}")), Some("ada@example.com"))
                .unwrap()
                .failed_at(now);
        }
        let later = now + 15 * MINUTE;
        for n in 0..4 {
            throttle
                .begin_at(later, ip(&format!("10.0.1.{n}")), Some("ada@example.com"))
                .unwrap()
                .failed_at(later);
        }
        assert!(
            throttle
                .begin_at(later, ip("10.0.2.1"), Some("ada@example.com"))
                .is_ok()
        );
    }

    #[test]
    fn concurrent_attempts_count_before_they_finish() {
        let throttle = throttle();
        let now = Instant::now();
        let admitted: Vec<_> = (0..5)
            .map(|n| {
                throttle
                    .begin_at(now, ip(&format!("10.0.0.{n}")), Some("ada@example.com"))
                    .unwrap()
            })
            .collect();
        assert!(
            throttle
                .begin_at(now, ip("10.0.0.9"), Some("ada@example.com"))
                .is_err(),
            "five guesses in flight use up the allowance"
        );
        drop(admitted);
        assert!(
            throttle
                .begin_at(now, ip("10.0.0.9"), Some("ada@example.com"))
                .is_ok(),
            "abandoned attempts give the account its allowance back"
        );
    }

    #[test]
    fn an_address_gets_a_burst_then_a_steady_rate_and_successes_back() {
        let throttle = throttle();
        let now = Instant::now();
        for n in 0..20 {
            throttle
                .begin_at(now, ip("192.0.2.7"), Some(&format!("user{n}@example.com")))
                .unwrap()
                .failed_at(now);
        }
        let refused = throttle
            .begin_at(now, ip("192.0.2.7"), Some("other@example.com"))
            .err()
            .unwrap();
        assert_eq!(refused.reason, RefusedBecause::Address);
        assert_eq!(
            refused.retry_after_seconds(),
            3,
            "20 a minute: one every 3 s"
        );
        assert!(throttle.begin_at(now, ip("192.0.2.8"), None).is_ok());
        // IPv6 counts by /64.
        for n in 0..20 {
            throttle
                .begin_at(now, ip(&format!("2001:db8::{n:x}")), None)
                .unwrap()
                .failed_at(now);
        }
        assert!(throttle.begin_at(now, ip("2001:db8::ffff"), None).is_err());
        assert!(throttle.begin_at(now, ip("2001:db8:0:1::1"), None).is_ok());

        let later = now + Duration::from_secs(3);
        let attempt = throttle.begin_at(later, ip("192.0.2.7"), None).unwrap();
        attempt.succeeded_at(later);
        assert!(
            throttle.begin_at(later, ip("192.0.2.7"), None).is_ok(),
            "a success gives its attempt back"
        );
    }

    #[test]
    fn the_maps_stay_bounded() {
        let throttle = throttle();
        let now = Instant::now();
        for n in 0..(MAX_TRACKED as u32 * 3) {
            let address = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            if let Ok(attempt) =
                throttle.begin_at(now, Some(address), Some(&format!("{n}@example.com")))
            {
                attempt.failed_at(now);
            }
        }
        let (accounts, addresses) = throttle.sizes();
        assert!(accounts <= MAX_TRACKED && addresses <= MAX_TRACKED);
    }

    #[test]
    fn trusted_proxies_parse_and_pick_the_client() {
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.local").is_err());
        let proxies = TrustedProxies::parse("10.0.0.0/8, 127.0.0.1 ,fd00::/8").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "6.6.6.6, 203.0.113.9, 10.1.2.3".parse().unwrap(),
        );
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(
            proxies.client_address(peer, &headers),
            "203.0.113.9".parse::<IpAddr>().unwrap(),
            "the right-most address that is not a proxy; what the client wrote further left is not believed"
        );
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(proxies.client_address(stranger, &headers), stranger);
        assert_eq!(
            TrustedProxies::default().client_address(peer, &headers),
            peer
        );
    }
}
