//! Per-target rate limits: a token bucket per service, so a burst of deliveries does not
//! trip the service's own limits.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A limit: `per_second` sustained, bursts up to `burst`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Sustained calls per second.
    pub per_second: f64,
    /// Calls allowed at once after a quiet period.
    pub burst: u32,
}

#[derive(Debug)]
struct Bucket {
    limit: RateLimit,
    tokens: f64,
    updated: Instant,
}

/// Token buckets by target name. Targets without a limit are not throttled.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// A limiter with these limits by target.
    pub fn new(limits: impl IntoIterator<Item = (String, RateLimit)>) -> Self {
        let now = Instant::now();
        let buckets = limits
            .into_iter()
            .map(|(target, limit)| {
                let bucket = Bucket {
                    limit,
                    tokens: f64::from(limit.burst.max(1)),
                    updated: now,
                };
                (target, bucket)
            })
            .collect();
        Self {
            buckets: Mutex::new(buckets),
        }
    }

    /// Waits until a call to `target` is allowed, and takes it.
    pub async fn acquire(&self, target: &str) {
        loop {
            let wait = {
                let Ok(mut buckets) = self.buckets.lock() else {
                    return;
                };
                let Some(bucket) = buckets.get_mut(target) else {
                    return;
                };
                let now = Instant::now();
                let refill =
                    now.duration_since(bucket.updated).as_secs_f64() * bucket.limit.per_second;
                bucket.tokens = (bucket.tokens + refill).min(f64::from(bucket.limit.burst.max(1)));
                bucket.updated = now;
                if bucket.tokens >= 1.0 {
                    bucket.tokens -= 1.0;
                    return;
                }
                let missing = 1.0 - bucket.tokens;
                Duration::from_secs_f64(missing / bucket.limit.per_second.max(f64::MIN_POSITIVE))
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bursts_then_paces() {
        let limiter = RateLimiter::new([(
            "jira".to_owned(),
            RateLimit {
                per_second: 10.0,
                burst: 5,
            },
        )]);
        let start = Instant::now();
        for _ in 0..5 {
            limiter.acquire("jira").await;
        }
        assert!(start.elapsed() < Duration::from_millis(1));
        for _ in 0..10 {
            limiter.acquire("jira").await;
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(990) && elapsed < Duration::from_millis(1100),
            "{elapsed:?}"
        );
        // Unlimited targets never wait.
        let before = Instant::now();
        limiter.acquire("slack").await;
        assert_eq!(before.elapsed(), Duration::ZERO);
    }
}
