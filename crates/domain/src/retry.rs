//! When to try again after a transient failure: exponential backoff with
//! jitter, capped at a few minutes, for as long as a *horizon* (24 hours by
//! default) from when the work was queued.
//!
//! One rule for every retried thing (workflow runs, auto-draft messages,
//! system email, mailbox syncs), so behaviour under an outage is
//! predictable: a provider incident of hours delays work without failing
//! it, and once the provider answers again the work resumes within the cap.
//! Decision 0012 says why these numbers.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// How failing work is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failed attempt.
    pub base: Duration,
    /// No backoff delay is longer than this (a `Retry-After` may be).
    pub cap: Duration,
    /// Work is retried until this long after it was queued; then it fails
    /// for good with its last error.
    pub horizon: Duration,
}

/// Attempts a job may make whatever the horizon: a backstop against a job
/// whose worker dies on every attempt faster than the horizon can count.
pub const MAX_ATTEMPTS_BACKSTOP: u32 = 100_000;

impl RetryPolicy {
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        base: Duration::from_secs(2),
        cap: Duration::from_secs(5 * 60),
        horizon: Duration::from_secs(24 * 60 * 60),
    };

    /// The delay before the next attempt, given how many attempts have been
    /// made so far (1 after the first failure). "Equal jitter": half the
    /// exponential delay is fixed, half random, so retries of many jobs that
    /// failed together spread out but none retries immediately.
    pub fn delay_after(&self, attempts_made: u32, random_unit: f64) -> Duration {
        let exponent = attempts_made.saturating_sub(1).min(30);
        let exponential = self.base.saturating_mul(1u32 << exponent).min(self.cap);
        let half = exponential / 2;
        half + half.mul_f64(random_unit.clamp(0.0, 1.0))
    }

    /// As [`delay_after`](Self::delay_after), with process randomness.
    pub fn jittered_delay_after(&self, attempts_made: u32) -> Duration {
        self.delay_after(attempts_made, fastrand::f64())
    }

    /// When work queued at `queued_at` stops being retried.
    pub fn gives_up_at(&self, queued_at: DateTime<Utc>) -> DateTime<Utc> {
        queued_at + chrono::Duration::from_std(self.horizon).unwrap_or(chrono::Duration::MAX)
    }

    /// Whether work queued at `queued_at` is past its horizon at `now`.
    pub fn has_given_up(&self, queued_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        now >= self.gives_up_at(queued_at)
    }

    /// When to try again after attempt `attempts_made` failed at `now`: the
    /// backoff, or the provider's `Retry-After` when that is longer (always
    /// honoured), but never after the horizon (the attempt then due is the
    /// one that gives up).
    pub fn next_attempt_at(
        &self,
        queued_at: DateTime<Utc>,
        attempts_made: u32,
        now: DateTime<Utc>,
        retry_after: Option<Duration>,
    ) -> DateTime<Utc> {
        let delay = self
            .jittered_delay_after(attempts_made)
            .max(retry_after.unwrap_or_default());
        let next = now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        next.min(self.gives_up_at(queued_at)).max(now)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_then_stop_at_the_cap() {
        let policy = RetryPolicy {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(10),
            horizon: Duration::from_secs(3600),
        };
        // With the random half at its maximum the delay is the full exponential one.
        assert_eq!(policy.delay_after(1, 1.0), Duration::from_secs(2));
        assert_eq!(policy.delay_after(2, 1.0), Duration::from_secs(4));
        assert_eq!(policy.delay_after(3, 1.0), Duration::from_secs(8));
        assert_eq!(policy.delay_after(4, 1.0), Duration::from_secs(10));
        assert_eq!(policy.delay_after(40, 1.0), Duration::from_secs(10));
        // With it at zero, half of that: never an immediate retry.
        assert_eq!(policy.delay_after(3, 0.0), Duration::from_secs(4));
    }

    #[test]
    fn jitter_stays_within_half_and_full_delay() {
        let policy = RetryPolicy::DEFAULT;
        for attempt in 1..12 {
            let full = policy.delay_after(attempt, 1.0);
            for _ in 0..50 {
                let delay = policy.jittered_delay_after(attempt);
                assert!(delay >= full / 2 && delay <= full, "{delay:?} vs {full:?}");
            }
        }
    }

    /// The default outlasts a five-minute incident many times over, and a
    /// delay never exceeds five minutes, so work resumes soon after one.
    #[test]
    fn the_default_retries_for_a_day_at_most_five_minutes_apart() {
        let policy = RetryPolicy::DEFAULT;
        assert_eq!(policy.horizon, Duration::from_secs(86_400));
        assert!(policy.delay_after(1_000, 1.0) <= Duration::from_secs(300));
        // Attempts within the horizon stay below the backstop.
        let shortest_capped = policy.delay_after(1_000, 0.0);
        assert!(
            (policy.horizon.as_secs() / shortest_capped.as_secs())
                < u64::from(MAX_ATTEMPTS_BACKSTOP)
        );
    }

    #[test]
    fn retry_after_is_honoured_beyond_the_cap_but_not_beyond_the_horizon() {
        let policy = RetryPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(10),
            horizon: Duration::from_secs(3600),
        };
        let queued = DateTime::parse_from_rfc3339("2026-12-05T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let now = queued + chrono::Duration::minutes(10);
        let hinted = policy.next_attempt_at(queued, 1, now, Some(Duration::from_secs(120)));
        assert_eq!(hinted, now + chrono::Duration::seconds(120));
        let late = queued + chrono::Duration::minutes(59) + chrono::Duration::seconds(59);
        let clamped = policy.next_attempt_at(queued, 50, late, Some(Duration::from_secs(600)));
        assert_eq!(clamped, policy.gives_up_at(queued));
        assert!(!policy.has_given_up(queued, late));
        assert!(policy.has_given_up(queued, clamped));
    }
}
