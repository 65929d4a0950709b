//! Rate limiting of failed authentication: after `max` failures from one source
//! within `window`, that source is answered 429 (with `Retry-After`) until the
//! window ends, whatever credential it sends. Guessing a secret stays impossible in
//! practice; this keeps a misconfigured or hostile sender from filling the logs and
//! the CPU, and slows the guessing of a short operator-chosen token.
//!
//! A source is a network, not an address: every loopback address (all of
//! 127.0.0.0/8 and `::1`) is one source, so a local process gains nothing by
//! rotating them, and an IPv6 client is its /64. Token and session failures and
//! trigger failures are counted by separate limiters, so bad triggers never lock
//! out a token holder. At most [`MAX_SOURCES`] sources are tracked; past that the
//! one whose window began longest ago is forgotten.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::AppError;

/// Sources tracked at most.
pub const MAX_SOURCES: usize = 10_000;

/// Where failures are counted: a network, not an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// Every loopback address, IPv4 and IPv6.
    Loopback,
    /// One IPv4 address.
    V4(u32),
    /// One IPv6 /64.
    V6(u64),
}

impl Source {
    /// The source an address belongs to.
    #[must_use]
    pub fn of(ip: IpAddr) -> Self {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        if ip.is_loopback() {
            return Source::Loopback;
        }
        match ip {
            IpAddr::V4(v4) => Source::V4(u32::from(v4)),
            IpAddr::V6(v6) => Source::V6((u128::from(v6) >> 64) as u64),
        }
    }
}

/// Failure counts per source.
pub struct FailureLimiter {
    max: u32,
    window: Duration,
    what: &'static str,
    seen: Mutex<HashMap<Source, (Instant, u32)>>,
}

impl FailureLimiter {
    /// At most `max` failures per `window` and source (0: no limit); `what` names
    /// the failures in the 429's message.
    #[must_use]
    pub fn new(max: u32, window: Duration, what: &'static str) -> Self {
        FailureLimiter { max, window, what, seen: Mutex::new(HashMap::new()) }
    }

    /// Seconds until `ip`'s source may try again, when it is blocked.
    #[must_use]
    pub fn blocked(&self, ip: IpAddr) -> Option<u64> {
        if self.max == 0 {
            return None;
        }
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let (since, count) = seen.get(&Source::of(ip))?;
        let left = self.window.checked_sub(since.elapsed())?;
        (*count >= self.max).then(|| left.as_secs() + 1)
    }

    /// A 429 with `Retry-After` when `ip`'s source is blocked.
    ///
    /// # Errors
    /// The 429.
    pub fn refuse_if_blocked(&self, ip: Option<IpAddr>) -> Result<(), AppError> {
        match ip.and_then(|ip| self.blocked(ip)) {
            Some(secs) => Err(AppError::TooManyRequests {
                message: format!("too many failed {} from this address; wait before trying again", self.what),
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

    /// Counts a failure from `ip`'s source.
    pub fn failed(&self, ip: IpAddr) {
        if self.max == 0 {
            return;
        }
        let source = Source::of(ip);
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= MAX_SOURCES && !seen.contains_key(&source) {
            let window = self.window;
            seen.retain(|_, (since, _)| since.elapsed() < window);
            if seen.len() >= MAX_SOURCES {
                if let Some(oldest) = seen.iter().min_by_key(|(_, (since, _))| *since).map(|(k, _)| *k) {
                    seen.remove(&oldest);
                }
            }
        }
        let entry = seen.entry(source).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// How many sources are tracked.
    #[must_use]
    pub fn tracked(&self) -> usize {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn a_source_is_blocked_after_max_failures_until_the_window_ends() {
        let limiter = FailureLimiter::new(3, Duration::from_millis(200), "tries");
        let (a, b) = (ip("192.0.2.1"), ip("2001:db8::1"));
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

    #[test]
    fn rotating_loopback_addresses_or_an_ipv6_64_gains_nothing() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60), "tries");
        limiter.failed(ip("127.0.0.1"));
        limiter.failed(ip("127.8.9.10"));
        limiter.failed(ip("::1"));
        assert!(limiter.blocked(ip("127.0.0.2")).is_some());
        assert!(limiter.blocked(ip("::ffff:127.0.0.3")).is_some());
        let v6 = FailureLimiter::new(2, Duration::from_secs(60), "tries");
        v6.failed(ip("2001:db8:0:1::1"));
        v6.failed(ip("2001:db8:0:1:ffff::2"));
        assert!(v6.blocked(ip("2001:db8:0:1::3")).is_some());
        assert!(v6.blocked(ip("2001:db8:0:2::1")).is_none());
    }

    #[test]
    fn the_map_is_bounded() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60), "tries");
        for n in 0..(MAX_SOURCES as u32 + 500) {
            limiter.failed(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n)));
        }
        assert_eq!(limiter.tracked(), MAX_SOURCES);
    }
}
