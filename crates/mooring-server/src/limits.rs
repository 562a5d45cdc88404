//! Fair limits: failures are counted per source address, and only failures. A
//! webhook delivery whose signature verifies is always taken, however much garbage
//! others send; a log-in with a valid token from one address is never refused because
//! another address guessed wrong. An address that fails too often in a window is
//! answered `429` until the window ends.
//!
//! The address is the TCP peer (`X-Forwarded-For` is not trusted): behind a reverse
//! proxy every client shares the proxy's address. IPv6 addresses count per /64, the
//! block one host usually holds. The table is bounded ([`MAX_ADDRESSES`]).

use axum::extract::ConnectInfo;
use axum::Extension;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What is limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Webhook deliveries refused by `hooks::verify` (bad or missing signature or token,
    /// no delivery id, unknown provider).
    Webhook,
    /// Log-ins with an unknown, revoked or expired token.
    Login,
}

impl Scope {
    /// At most this many failures per address in this window.
    pub fn limit(self) -> (u32, Duration) {
        match self {
            Scope::Webhook => (30, Duration::from_secs(10)),
            Scope::Login => (10, Duration::from_secs(60)),
        }
    }
}

/// Addresses remembered at most; beyond, expired windows and then the oldest go.
pub const MAX_ADDRESSES: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Failure counts per scope and source address.
#[derive(Debug, Default)]
pub struct FailureLimiter {
    windows: Mutex<HashMap<(Scope, IpAddr), Window>>,
}

impl FailureLimiter {
    /// How long `addr` must still wait when it is over the limit of `scope`.
    pub fn blocked(&self, scope: Scope, addr: IpAddr, now: Instant) -> Option<Duration> {
        let (max, window) = scope.limit();
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let w = windows.get(&(scope, key(addr)))?;
        let age = now.saturating_duration_since(w.started);
        (w.failures >= max && age < window).then(|| window - age)
    }

    /// Counts a failure of `addr`; says how long it must wait when this one put it
    /// over the limit (or it already was).
    pub fn failed(&self, scope: Scope, addr: IpAddr, now: Instant) -> Option<Duration> {
        let (max, window) = scope.limit();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let k = (scope, key(addr));
        if !windows.contains_key(&k) && windows.len() >= MAX_ADDRESSES {
            windows.retain(|(s, _), w| now.saturating_duration_since(w.started) < s.limit().1);
            if windows.len() >= MAX_ADDRESSES {
                if let Some(oldest) = windows
                    .iter()
                    .min_by_key(|(_, w)| w.started)
                    .map(|(k, _)| *k)
                {
                    windows.remove(&oldest);
                }
            }
        }
        let w = windows.entry(k).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now.saturating_duration_since(w.started) >= window {
            *w = Window {
                started: now,
                failures: 0,
            };
        }
        w.failures = w.failures.saturating_add(1);
        let age = now.saturating_duration_since(w.started);
        (w.failures > max).then(|| window.saturating_sub(age))
    }
}

/// The address failures are counted against: IPv4 as is (also when mapped into
/// IPv6), IPv6 by its /64.
fn key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The request's source address (`0.0.0.0` when the server was built without
/// connection info, e.g. in-process: then every request shares one count).
pub fn source_address(info: Option<Extension<ConnectInfo<SocketAddr>>>) -> IpAddr {
    info.map(|Extension(ConnectInfo(a))| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn failures_count_per_address_and_scope_until_the_window_ends() {
        let l = FailureLimiter::default();
        let t0 = Instant::now();
        let (max, window) = Scope::Login.limit();
        for _ in 0..max {
            assert_eq!(l.failed(Scope::Login, ip("127.0.0.2"), t0), None);
        }
        assert!(l.blocked(Scope::Login, ip("127.0.0.2"), t0).is_some());
        assert!(l.failed(Scope::Login, ip("127.0.0.2"), t0).is_some());
        // Others are not affected: another address, another scope.
        assert_eq!(l.blocked(Scope::Login, ip("127.0.0.1"), t0), None);
        assert_eq!(l.blocked(Scope::Webhook, ip("127.0.0.2"), t0), None);
        // The window ends.
        assert_eq!(l.blocked(Scope::Login, ip("127.0.0.2"), t0 + window), None);
        assert_eq!(l.failed(Scope::Login, ip("127.0.0.2"), t0 + window), None);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(key(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
        let l = FailureLimiter::default();
        let t0 = Instant::now();
        let (max, _) = Scope::Webhook.limit();
        for i in 0..=max {
            l.failed(Scope::Webhook, ip(&format!("2001:db8::{i:x}")), t0);
        }
        assert!(l
            .blocked(Scope::Webhook, ip("2001:db8::ffff"), t0)
            .is_some());
    }

    #[test]
    fn the_table_stays_bounded() {
        let l = FailureLimiter::default();
        let t0 = Instant::now();
        for i in 0..(MAX_ADDRESSES as u32 + 100) {
            l.failed(
                Scope::Webhook,
                IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)),
                t0,
            );
        }
        assert_eq!(
            l.windows.lock().unwrap().len(),
            MAX_ADDRESSES,
            "never more than MAX_ADDRESSES"
        );
    }
}
