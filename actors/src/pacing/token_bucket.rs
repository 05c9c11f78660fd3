//! A token bucket: how a download keeps its pull across a rate-capped
//! office link (`wan_rate_mbit` in the topology) under the cap. Bytes are
//! taken before a request is sent; the bucket refills at the rate and holds
//! at most `capacity` bytes, so bursts stay short. The same gate holds the
//! pull while the link is paused as busy ([`crate::pacing::busy`]). Plain logic
//! that takes `now`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::pacing::busy::LinkPause;
use crate::wire::UpstreamLink;

/// How soon a download paused as busy asks again.
const PAUSE_RECHECK: Duration = Duration::from_millis(500);

/// A token bucket of bytes.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    bytes_per_sec: u64,
    rate: f64,
    capacity: f64,
    tokens: f64,
    at: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket refilling at `bytes_per_sec`, holding at most
    /// `capacity` bytes (never less than one byte per second's worth of
    /// refill, so `take` of up to `capacity` always succeeds eventually).
    pub fn new(bytes_per_sec: u64, capacity: u64) -> Self {
        let bytes_per_sec = bytes_per_sec.max(1);
        TokenBucket {
            bytes_per_sec,
            rate: bytes_per_sec as f64,
            capacity: capacity.max(1) as f64,
            tokens: capacity.max(1) as f64,
            at: None,
        }
    }

    /// The rate, in bytes per second.
    pub fn rate(&self) -> u64 {
        self.bytes_per_sec
    }

    fn refill(&mut self, now: Instant) {
        if let Some(at) = self.at {
            let elapsed = now.saturating_duration_since(at).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        }
        self.at = Some(now);
    }

    /// Takes `bytes` if the bucket holds them now. A request larger than the
    /// capacity is allowed when the bucket is full (it then runs a debt).
    pub fn try_take(&mut self, bytes: u64, now: Instant) -> bool {
        self.refill(now);
        let bytes = bytes as f64;
        if self.tokens >= bytes.min(self.capacity) {
            self.tokens -= bytes;
            true
        } else {
            false
        }
    }

    /// When `bytes` can be taken, if not now.
    pub fn ready_at(&self, bytes: u64, now: Instant) -> Instant {
        let mut probe = self.clone();
        probe.refill(now);
        let missing = (bytes as f64).min(self.capacity) - probe.tokens;
        if missing <= 0.0 {
            now
        } else {
            now + Duration::from_secs_f64(missing / self.rate)
        }
    }
}

/// The cap on the link into this node's office, its busy pause and the
/// rate that still flows while the pause holds, shared by every download
/// of the node (they all pull across the same link). Cloning shares it.
/// The buckets live on one arbiter: the office and its transfers.
#[derive(Clone, Debug, Default)]
pub struct LinkRate {
    cap: Rc<RefCell<Option<TokenBucket>>>,
    floor: Rc<RefCell<Option<TokenBucket>>>,
    pause: LinkPause,
}

/// Bytes per second in `mbit` Mbit/s.
fn bytes_per_sec(mbit: u32) -> u64 {
    u64::from(mbit) * 125_000
}

/// Sets `bucket` to `rate` bytes per second (`None`: none); unchanged if
/// the rate is the same, so bytes already taken still count.
fn set_bucket(bucket: &RefCell<Option<TokenBucket>>, rate: Option<u64>, piece_bytes: u64) {
    let mut bucket = bucket.borrow_mut();
    match rate {
        None => *bucket = None,
        Some(rate) if bucket.as_ref().is_some_and(|b| b.rate() == rate) => {}
        Some(rate) => {
            let capacity = (2 * piece_bytes).max(rate / 4);
            *bucket = Some(TokenBucket::new(rate, capacity));
        }
    }
}

/// Takes `bytes` from `bucket`, or says when it will hold them; `open`
/// when there is no bucket.
fn take_from(
    bucket: &RefCell<Option<TokenBucket>>,
    bytes: u64,
    now: Instant,
    open: Result<(), Instant>,
) -> Result<(), Instant> {
    let mut bucket = bucket.borrow_mut();
    let Some(b) = bucket.as_mut() else {
        return open;
    };
    if b.try_take(bytes, now) {
        Ok(())
    } else {
        Err(b.ready_at(bytes, now))
    }
}

impl LinkRate {
    /// No cap yet, paused while `pause` says so.
    pub fn new(pause: LinkPause) -> Self {
        LinkRate {
            cap: Rc::default(),
            floor: Rc::default(),
            pause,
        }
    }

    /// Takes the link's settings from a sources answer (`None`: the
    /// downloads do not cross it, so no cap): its cap, its floor and its
    /// pause thresholds. Each request counts as `piece_bytes`.
    pub fn set(&self, link: Option<&UpstreamLink>, piece_bytes: u64) {
        let max = link.and_then(|l| l.max_rate_mbit).map(bytes_per_sec);
        let min = link
            .and_then(|l| l.settings.min_rate_mbit)
            .map(bytes_per_sec);
        set_bucket(&self.cap, max, piece_bytes);
        set_bucket(&self.floor, min, piece_bytes);
        if let Some(link) = link {
            self.pause.apply(&link.settings);
        }
    }

    /// Takes `bytes` if the link is not paused and there is no cap or the
    /// cap's bucket holds them, or while paused if the floor's bucket holds
    /// them; else says when to ask again.
    pub fn try_take(&self, bytes: u64, now: Instant) -> Result<(), Instant> {
        if self.pause.paused(now).is_some() {
            return take_from(&self.floor, bytes, now, Err(now + PAUSE_RECHECK))
                .map_err(|at| at.min(now + PAUSE_RECHECK));
        }
        take_from(&self.cap, bytes, now, Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::LinkSettings;

    const MIB: u64 = 1 << 20;

    #[test]
    fn a_full_bucket_gives_its_capacity_then_paces_at_the_rate() {
        let now = Instant::now();
        let mut b = TokenBucket::new(2 * MIB, 2 * MIB);
        assert!(b.try_take(MIB, now));
        assert!(b.try_take(MIB, now));
        assert!(!b.try_take(MIB, now), "empty");
        assert_eq!(b.ready_at(MIB, now), now + Duration::from_millis(500));
        assert!(!b.try_take(MIB, now + Duration::from_millis(400)));
        assert!(b.try_take(MIB, now + Duration::from_millis(500)));
    }

    #[test]
    fn over_a_long_run_the_rate_holds() {
        let start = Instant::now();
        let mut b = TokenBucket::new(10 * MIB, 2 * MIB);
        let mut taken = 0u64;
        let mut now = start;
        while now < start + Duration::from_secs(10) {
            if b.try_take(MIB, now) {
                taken += MIB;
            }
            now += Duration::from_millis(7);
        }
        // 10 s at 10 MiB/s, plus the first full bucket.
        assert!((100 * MIB..=102 * MIB).contains(&taken), "{}", taken / MIB);
    }

    #[test]
    fn a_shared_link_rate_is_one_budget_for_every_download() {
        let now = Instant::now();
        let link = LinkRate::default();
        assert_eq!(link.try_take(MIB, now), Ok(()), "no cap yet");
        // 8 Mbit/s, a full bucket of 1 MiB (two pieces of 512 KiB).
        let capped = UpstreamLink {
            max_rate_mbit: Some(8),
            ..UpstreamLink::default()
        };
        link.set(Some(&capped), MIB / 2);
        let other = link.clone();
        assert_eq!(link.try_take(MIB / 2, now), Ok(()));
        assert_eq!(other.try_take(MIB / 2, now), Ok(()));
        assert!(
            other.try_take(MIB / 2, now).is_err(),
            "both drew on one bucket"
        );
        link.set(Some(&capped), MIB / 2);
        assert!(
            other.try_take(MIB / 2, now).is_err(),
            "the same rate keeps the bucket"
        );
    }

    #[test]
    fn a_paused_link_gives_nothing_until_it_resumes() {
        let pause = LinkPause::default();
        let link = LinkRate::new(pause.clone());
        let mut now = Instant::now();
        let sample = |now: Instant, ms: u64| pause.on_rtt(now, Duration::from_millis(ms));
        for _ in 0..20 {
            now += Duration::from_millis(100);
            sample(now, 80);
        }
        assert_eq!(link.try_take(MIB, now), Ok(()), "no cap, not paused");
        for _ in 0..60 {
            now += Duration::from_millis(100);
            sample(now, 300);
        }
        assert_eq!(link.try_take(MIB, now), Err(now + PAUSE_RECHECK));
        for _ in 0..60 {
            now += Duration::from_millis(100);
            sample(now, 81);
        }
        assert_eq!(link.try_take(MIB, now), Ok(()), "resumed");
    }

    #[test]
    fn a_floor_still_flows_while_paused_and_no_faster() {
        let pause = LinkPause::default();
        let link = LinkRate::new(pause.clone());
        link.set(
            Some(&UpstreamLink {
                max_rate_mbit: None,
                settings: LinkSettings {
                    min_rate_mbit: Some(8),
                    ..LinkSettings::default()
                },
            }),
            MIB / 2,
        );
        let mut now = Instant::now();
        for _ in 0..20 {
            now += Duration::from_millis(100);
            pause.on_rtt(now, Duration::from_millis(80));
        }
        for _ in 0..60 {
            now += Duration::from_millis(100);
            pause.on_rtt(now, Duration::from_millis(300));
        }
        assert!(pause.paused(now).is_some());
        // The floor's full bucket (1 MiB), then 1 MB/s.
        assert_eq!(link.try_take(MIB / 2, now), Ok(()));
        assert_eq!(link.try_take(MIB / 2, now), Ok(()));
        let next = link.try_take(MIB / 2, now).unwrap_err();
        assert_eq!(
            next,
            now + PAUSE_RECHECK,
            "asks again no later than a recheck"
        );
        let later = now + Duration::from_millis(600);
        assert_eq!(link.try_take(MIB / 2, later), Ok(()), "0.6 MB came back");
    }

    #[test]
    fn a_request_larger_than_the_bucket_goes_when_it_is_full() {
        let now = Instant::now();
        let mut b = TokenBucket::new(MIB, MIB / 2);
        assert!(
            b.try_take(MIB, now),
            "a full bucket lets one big request through"
        );
        assert!(!b.try_take(1, now + Duration::from_millis(400)), "in debt");
        assert!(b.try_take(MIB, now + Duration::from_millis(1000)));
    }
}
