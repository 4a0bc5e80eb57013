//! Retry policy: a few immediate attempts, then exponential backoff with jitter and a cap.

use std::time::Duration;

/// Delay before each redelivery of a failed event.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Failed attempts that are redelivered at once.
    pub immediate_attempts: u32,
    /// Delay after the first failure past the immediate ones.
    pub initial_backoff: Duration,
    /// Factor between consecutive delays.
    pub multiplier: f64,
    /// Longest delay.
    pub max_backoff: Duration,
    /// Fraction (0 to 1) of each delay that is randomized, so retries of many events spread out.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            immediate_attempts: 1,
            initial_backoff: Duration::from_millis(100),
            multiplier: 2.0,
            max_backoff: Duration::from_secs(30),
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// A policy that redelivers at once, every time; for tests and idempotent cheap handlers.
    pub fn immediate() -> Self {
        Self {
            immediate_attempts: u32::MAX,
            ..Self::default()
        }
    }

    /// Delay before redelivering after failed attempt number `attempt` (starting at 1).
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let nominal = self.nominal_delay_after(attempt).as_secs_f64();
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = 1.0 - jitter + 2.0 * jitter * fastrand::f64();
        Duration::from_secs_f64((nominal * factor).min(self.max_backoff.as_secs_f64()))
    }

    /// The delay after failed attempt `attempt`, without jitter.
    pub fn nominal_delay_after(&self, attempt: u32) -> Duration {
        if attempt <= self.immediate_attempts {
            return Duration::ZERO;
        }
        let exponent = i32::try_from(attempt - self.immediate_attempts - 1).unwrap_or(i32::MAX);
        let base = self.initial_backoff.as_secs_f64() * self.multiplier.powi(exponent);
        Duration::from_secs_f64(base.clamp(0.0, self.max_backoff.as_secs_f64()))
    }

    /// The nominal time between the first failed attempt and attempt `attempt`: the sum of
    /// the delays after the attempts before it.
    pub fn nominal_delay_before(&self, attempt: u32) -> Duration {
        let mut total = Duration::ZERO;
        for failed in 1..attempt {
            let delay = self.nominal_delay_after(failed);
            if delay >= self.max_backoff {
                // Every later delay is the cap too.
                return total.saturating_add(self.max_backoff.saturating_mul(attempt - failed));
            }
            total += delay;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn without_jitter() -> RetryPolicy {
        RetryPolicy {
            immediate_attempts: 2,
            initial_backoff: Duration::from_millis(100),
            multiplier: 2.0,
            max_backoff: Duration::from_millis(500),
            jitter: 0.0,
        }
    }

    #[test]
    fn immediate_attempts_have_no_delay() {
        let policy = without_jitter();
        assert_eq!(policy.delay_after(1), Duration::ZERO);
        assert_eq!(policy.delay_after(2), Duration::ZERO);
    }

    #[test]
    fn backoff_doubles_then_caps() {
        let policy = without_jitter();
        assert_eq!(policy.delay_after(3), Duration::from_millis(100));
        assert_eq!(policy.delay_after(4), Duration::from_millis(200));
        assert_eq!(policy.delay_after(5), Duration::from_millis(400));
        assert_eq!(policy.delay_after(6), Duration::from_millis(500));
        assert_eq!(policy.delay_after(60), Duration::from_millis(500));
    }

    #[test]
    fn jitter_stays_within_its_fraction_and_the_cap() {
        let policy = RetryPolicy {
            jitter: 0.5,
            ..without_jitter()
        };
        for _ in 0..1000 {
            let delay = policy.delay_after(4);
            assert!(
                delay >= Duration::from_millis(100) && delay <= Duration::from_millis(300),
                "{delay:?}"
            );
            assert!(policy.delay_after(9) <= Duration::from_millis(500));
        }
    }

    #[test]
    fn a_nonsensical_multiplier_gives_no_negative_delay() {
        let policy = RetryPolicy {
            multiplier: -3.0,
            ..without_jitter()
        };
        assert_eq!(policy.delay_after(4), Duration::ZERO);
    }

    #[test]
    fn the_time_before_an_attempt_sums_the_delays_before_it() {
        let policy = without_jitter();
        assert_eq!(policy.nominal_delay_before(1), Duration::ZERO);
        assert_eq!(policy.nominal_delay_before(3), Duration::ZERO);
        assert_eq!(policy.nominal_delay_before(5), Duration::from_millis(300));
        assert_eq!(policy.nominal_delay_before(8), Duration::from_millis(1_700));
        assert_eq!(
            policy.nominal_delay_before(u32::MAX),
            Duration::from_millis(700 + 500 * u64::from(u32::MAX - 6))
        );
    }
}
