//! When to try again after a transient failure: exponential backoff with
//! jitter, capped, and a fixed number of attempts before a job is dead.
//!
//! One rule for every retried thing (workflow steps, auto-draft messages,
//! system email), so behaviour under an outage is predictable.

use std::time::Duration;

/// How a failing job is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failed attempt.
    pub base: Duration,
    /// No delay is longer than this.
    pub cap: Duration,
    /// Total attempts (the first one included) before the job is dead.
    pub max_attempts: u32,
}

impl RetryPolicy {
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        base: Duration::from_secs(2),
        cap: Duration::from_secs(60 * 60),
        max_attempts: 8,
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

    /// Whether a job that has made `attempts_made` attempts may run again.
    pub fn may_retry(&self, attempts_made: u32) -> bool {
        attempts_made < self.max_attempts
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
            max_attempts: 5,
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

    #[test]
    fn attempts_run_out() {
        let policy = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::DEFAULT
        };
        assert!(policy.may_retry(2));
        assert!(!policy.may_retry(3));
    }
}
