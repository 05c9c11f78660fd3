//! How often the console lets anyone try a password: a plain state
//! machine over the failed sign-ins of each client address and each
//! account name, with the time given by the caller (so it is tested
//! without a clock or a socket).
//!
//! The rule: a few failures are free (people mistype); after them each
//! further attempt from that address, or for that account, must wait, and
//! the wait doubles with each failure up to a cap. A success clears the
//! address and the name. The name's threshold is higher than the
//! address's and its wait is capped at 30 s, so one guesser cannot lock an
//! administrator out for long, while guessers spread over many addresses
//! still slow down on the name they all try. IPv6 addresses count by
//! their /64 (one host holds a whole /64). Failures older than the
//! window are forgotten, and so is a key once its wait is over and its
//! window passed, so the table stays small.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Failures one address may make before it has to wait.
pub const FREE_PER_ADDRESS: u32 = 5;
/// Failures one account name may have before every attempt at it waits.
pub const FREE_PER_NAME: u32 = 10;
/// The first wait; each further failure doubles it.
pub const FIRST_WAIT: Duration = Duration::from_secs(2);
/// The longest wait of an address.
pub const MOST_WAIT: Duration = Duration::from_secs(15 * 60);
/// The longest wait of an account name: it slows guessers spread over
/// many addresses without letting one guesser lock the account's owner
/// out for long.
pub const MOST_NAME_WAIT: Duration = Duration::from_secs(30);
/// How long a failure is remembered.
pub const WINDOW: Duration = Duration::from_secs(30 * 60);
/// Keys kept at most; beyond, the oldest are forgotten first.
const MOST_KEYS: usize = 100_000;

/// Whom failures are counted against.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Address(IpAddr),
    Name(String),
}

/// The failures counted against one key.
#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    last: Instant,
    /// No attempt before this.
    wait_until: Instant,
}

/// The sign-in limiter of one console.
#[derive(Debug, Default)]
pub struct SignInLimit {
    keys: HashMap<Key, Failures>,
}

impl SignInLimit {
    /// Whether `address` may try `name` now; if not, how long until it
    /// may.
    pub fn check(&self, address: IpAddr, name: &str, now: Instant) -> Result<(), Duration> {
        let wait = [Key::of(address), Key::Name(name.to_owned())]
            .iter()
            .filter_map(|k| self.keys.get(k))
            .filter(|f| now.duration_since(f.last) < WINDOW)
            .map(|f| f.wait_until.saturating_duration_since(now))
            .max()
            .unwrap_or_default();
        if wait.is_zero() { Ok(()) } else { Err(wait) }
    }

    /// Counts an attempt of `address` at `name` as failed (the console
    /// counts each attempt so before checking its password, so attempts
    /// made at once see each other, and clears it on success).
    pub fn failed(&mut self, address: IpAddr, name: &str, now: Instant) {
        if self.keys.len() >= MOST_KEYS {
            self.forget_old(now);
        }
        self.count(Key::of(address), FREE_PER_ADDRESS, MOST_WAIT, now);
        self.count(
            Key::Name(name.to_owned()),
            FREE_PER_NAME,
            MOST_NAME_WAIT,
            now,
        );
    }

    /// Counts a failed attempt of `address` with a name no account could
    /// have: against the address only.
    pub fn failed_address(&mut self, address: IpAddr, now: Instant) {
        if self.keys.len() >= MOST_KEYS {
            self.forget_old(now);
        }
        self.count(Key::of(address), FREE_PER_ADDRESS, MOST_WAIT, now);
    }

    fn count(&mut self, key: Key, free: u32, most: Duration, now: Instant) {
        let f = self.keys.entry(key).or_insert(Failures {
            count: 0,
            last: now,
            wait_until: now,
        });
        if now.duration_since(f.last) >= WINDOW {
            f.count = 0;
        }
        f.count += 1;
        f.last = now;
        f.wait_until = now + wait_after(f.count, free).min(most);
    }

    /// A success: the address and the name start afresh.
    pub fn succeeded(&mut self, address: IpAddr, name: &str) {
        self.keys.remove(&Key::of(address));
        self.keys.remove(&Key::Name(name.to_owned()));
    }

    /// Drops keys whose failures are past the window; if that is not
    /// enough, the half least recently failed.
    fn forget_old(&mut self, now: Instant) {
        self.keys
            .retain(|_, f| now.duration_since(f.last) < WINDOW || f.wait_until > now);
        if self.keys.len() >= MOST_KEYS {
            let mut lasts: Vec<Instant> = self.keys.values().map(|f| f.last).collect();
            let middle = lasts.len() / 2;
            let (_, cut, _) = lasts.select_nth_unstable(middle);
            let cut = *cut;
            self.keys.retain(|_, f| f.last > cut);
        }
    }
}

impl Key {
    /// The key of an address: itself for IPv4, its /64 for IPv6.
    fn of(address: IpAddr) -> Key {
        match address {
            IpAddr::V4(_) => Key::Address(address),
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                Key::Address(IpAddr::V6(bits.into()))
            }
        }
    }
}

/// The wait after the `count`th failure when `free` are free.
fn wait_after(count: u32, free: u32) -> Duration {
    match count.checked_sub(free) {
        None | Some(0) => Duration::ZERO,
        Some(beyond) => FIRST_WAIT
            .saturating_mul(1u32 << (beyond - 1).min(20))
            .min(MOST_WAIT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn a_few_mistakes_are_free_then_the_wait_doubles_up_to_the_cap() {
        let mut limit = SignInLimit::default();
        let t0 = Instant::now();
        for _ in 0..FREE_PER_ADDRESS {
            assert_eq!(limit.check(ip(1), "ada", t0), Ok(()));
            limit.failed(ip(1), "ada", t0);
        }
        assert_eq!(limit.check(ip(1), "ada", t0), Ok(()), "five are free");
        limit.failed(ip(1), "ada", t0);
        assert_eq!(limit.check(ip(1), "ada", t0), Err(FIRST_WAIT));
        // Another name from the same address waits too; the same name
        // from another address does not, yet.
        assert_eq!(limit.check(ip(1), "bob", t0), Err(FIRST_WAIT));
        assert_eq!(limit.check(ip(2), "ada", t0), Ok(()));
        let t1 = t0 + FIRST_WAIT;
        assert_eq!(limit.check(ip(1), "ada", t1), Ok(()));
        limit.failed(ip(1), "ada", t1);
        assert_eq!(limit.check(ip(1), "ada", t1), Err(FIRST_WAIT * 2));
        let mut t = t1;
        for _ in 0..30 {
            t += MOST_WAIT;
            limit.failed(ip(1), "ada", t);
        }
        assert_eq!(limit.check(ip(1), "ada", t), Err(MOST_WAIT), "capped");
    }

    #[test]
    fn guessers_on_many_addresses_slow_down_on_the_name_and_a_success_clears_it() {
        let mut limit = SignInLimit::default();
        let t0 = Instant::now();
        for n in 0..FREE_PER_NAME {
            limit.failed(ip(u8::try_from(n).unwrap() + 10), "ada", t0);
        }
        assert_eq!(limit.check(ip(99), "ada", t0), Ok(()), "ten are free");
        limit.failed(ip(100), "ada", t0);
        assert_eq!(limit.check(ip(99), "ada", t0), Err(FIRST_WAIT));
        assert_eq!(
            limit.check(ip(99), "bob", t0),
            Ok(()),
            "other names are not held up"
        );
        let mut t = t0;
        for n in 0..40u8 {
            t += MOST_NAME_WAIT;
            limit.failed(ip(n.wrapping_add(120)), "ada", t);
        }
        assert_eq!(
            limit.check(ip(99), "ada", t),
            Err(MOST_NAME_WAIT),
            "a name waits 30 s at most"
        );
        limit.succeeded(ip(99), "ada");
        assert_eq!(limit.check(ip(99), "ada", t0), Ok(()));
    }

    #[test]
    fn an_ipv6_host_counts_as_its_64_and_bad_names_count_against_the_address_only() {
        let mut limit = SignInLimit::default();
        let t0 = Instant::now();
        let host = |last: u16| IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, last]);
        for n in 0..=FREE_PER_ADDRESS {
            limit.failed(host(u16::try_from(n).unwrap()), "ada", t0);
        }
        assert_eq!(
            limit.check(host(999), "bob", t0),
            Err(FIRST_WAIT),
            "same /64"
        );
        let other = IpAddr::from([0x2001, 0xdb8, 0, 2, 0, 0, 0, 1]);
        assert_eq!(limit.check(other, "bob", t0), Ok(()));
        for _ in 0..=FREE_PER_ADDRESS {
            limit.failed_address(ip(7), t0);
        }
        assert_eq!(limit.check(ip(7), "x", t0), Err(FIRST_WAIT));
        assert_eq!(limit.check(ip(8), "ada", t0), Ok(()), "no name was counted");
    }

    #[test]
    fn failures_past_the_window_are_forgotten() {
        let mut limit = SignInLimit::default();
        let t0 = Instant::now();
        for _ in 0..=FREE_PER_ADDRESS {
            limit.failed(ip(1), "ada", t0);
        }
        assert!(limit.check(ip(1), "ada", t0).is_err());
        let later = t0 + WINDOW;
        assert_eq!(limit.check(ip(1), "ada", later), Ok(()));
        limit.failed(ip(1), "ada", later);
        assert_eq!(limit.check(ip(1), "ada", later), Ok(()), "counted afresh");
        limit.forget_old(later + WINDOW);
        assert!(limit.keys.is_empty());
    }
}
