//! Retry spacing: exponential backoff with full jitter, never sooner than the service asked.

use std::hash::{BuildHasher as _, Hasher as _};
use std::time::Duration;

/// How retries are spaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The delay scale after the first failure.
    pub base: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            max: Duration::from_secs(15 * 60),
        }
    }
}

impl Backoff {
    /// The delay before attempt `failed_attempts + 1`: a random duration between half and
    /// all of `base * 2^(failed_attempts - 1)` (capped at `max`), so that jobs failing
    /// together do not retry together; and at least `retry_after` when the service said so.
    ///
    /// ```
    /// use std::time::Duration;
    /// use hookbridge_sync_engine::engine::Backoff;
    /// let b = Backoff { base: Duration::from_secs(1), max: Duration::from_secs(60) };
    /// let d = b.delay(3, None);
    /// assert!(d >= Duration::from_secs(2) && d <= Duration::from_secs(4));
    /// assert_eq!(b.delay(1, Some(Duration::from_secs(30))), Duration::from_secs(30));
    /// assert!(b.delay(40, None) <= Duration::from_secs(60));
    /// ```
    pub fn delay(&self, failed_attempts: u32, retry_after: Option<Duration>) -> Duration {
        let exponent = failed_attempts.saturating_sub(1).min(30);
        let ceiling = self.base.saturating_mul(1u32 << exponent).min(self.max);
        let half = ceiling / 2;
        let jitter = half.mul_f64(unit_random());
        let delay = half + jitter;
        match retry_after {
            Some(asked) => delay.max(asked.min(self.max.max(asked))),
            None => delay,
        }
    }
}

/// A uniform number in [0, 1) from the standard library's randomly keyed hasher: enough to
/// spread retries, no cryptographic use.
fn unit_random() -> f64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x9e37_79b9_7f4a_7c15);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_within_bounds() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(10),
        };
        for attempt in 1..=20 {
            let ceiling = (Duration::from_millis(100) * 2u32.pow((attempt - 1).min(20))).min(b.max);
            for _ in 0..50 {
                let d = b.delay(attempt, None);
                assert!(d >= ceiling / 2 && d <= ceiling, "attempt {attempt}: {d:?}");
            }
        }
    }

    #[test]
    fn jitter_spreads() {
        let b = Backoff::default();
        let delays: std::collections::HashSet<_> = (0..20).map(|_| b.delay(5, None)).collect();
        assert!(delays.len() > 10);
    }

    #[test]
    fn retry_after_is_a_floor() {
        let b = Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_secs(1),
        };
        assert_eq!(
            b.delay(1, Some(Duration::from_secs(5))),
            Duration::from_secs(5)
        );
        assert!(b.delay(1, Some(Duration::from_millis(1))) >= Duration::from_millis(5));
    }
}
