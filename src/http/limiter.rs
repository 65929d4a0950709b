//! Rate limiting of failed authentication (wrong tokens, forged session cookies,
//! bad trigger signatures): after `max` failures from one address
//! within `window`, that address is answered 429 (with `Retry-After`) until the
//! window ends, whatever it sends. Guessing a secret stays impossible in practice;
//! this keeps a misconfigured or hostile sender from filling the logs and the CPU.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::AppError;

/// Addresses tracked before expired entries are swept.
const SWEEP_AT: usize = 10_000;

/// Failure counts per client address.
pub struct FailureLimiter {
    max: u32,
    window: Duration,
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl FailureLimiter {
    /// At most `max` failures per `window` and address (0: no limit).
    #[must_use]
    pub fn new(max: u32, window: Duration) -> Self {
        FailureLimiter { max, window, seen: Mutex::new(HashMap::new()) }
    }

    /// Seconds until `ip` may try again, when it is blocked.
    #[must_use]
    pub fn blocked(&self, ip: IpAddr) -> Option<u64> {
        if self.max == 0 {
            return None;
        }
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let (since, count) = seen.get(&ip)?;
        let left = self.window.checked_sub(since.elapsed())?;
        (*count >= self.max).then(|| left.as_secs() + 1)
    }

    /// A 429 with `Retry-After` when `ip` is blocked.
    ///
    /// # Errors
    /// The 429.
    pub fn refuse_if_blocked(&self, ip: Option<IpAddr>) -> Result<(), AppError> {
        match ip.and_then(|ip| self.blocked(ip)) {
            Some(secs) => Err(AppError::TooManyRequests {
                message: "too many failed authentication attempts from this address; wait before trying again".into(),
                retry_after_secs: Some(secs),
            }),
            None => Ok(()),
        }
    }

    /// Counts a failure from `ip` (if known).
    pub fn failed_from(&self, ip: Option<IpAddr>) {
        if let Some(ip) = ip {
            self.failed(ip);
        }
    }

    /// Counts a failure from `ip`.
    pub fn failed(&self, ip: IpAddr) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= SWEEP_AT {
            let window = self.window;
            seen.retain(|_, (since, _)| since.elapsed() < window);
        }
        let entry = seen.entry(ip).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_max_failures_until_the_window_ends() {
        let limiter = FailureLimiter::new(3, Duration::from_millis(200));
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.1".parse().expect("ip"), "::1".parse().expect("ip"));
        for _ in 0..2 {
            limiter.failed(a);
        }
        assert_eq!(limiter.blocked(a), None);
        limiter.failed(a);
        assert_eq!(limiter.blocked(a), Some(1));
        assert_eq!(limiter.blocked(b), None);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(limiter.blocked(a), None);
        limiter.failed(a);
        assert_eq!(limiter.blocked(a), None, "a new window starts from zero");
    }
}
