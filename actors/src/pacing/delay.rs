//! Queuing delay from RTT samples, as RFC 6817 estimates it: the current
//! RTT (the smallest of the last [`CURRENT_FILTER`] samples) less the base
//! RTT (the smallest seen in each of the last [`BASE_MINUTES`] minutes, so
//! a route change ages out instead of looking like a queue for ever).
//! Shared by the background controller ([`crate::pacing::ledbat`]) and the busy
//! pause ([`crate::pacing::busy`]). A plain state machine: samples carry their time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Minutes of base-RTT history (RFC 6817's BASE_HISTORY).
pub const BASE_MINUTES: usize = 10;
/// RTT samples the current delay is the minimum of.
pub const CURRENT_FILTER: usize = 4;

/// One path's delay estimate.
#[derive(Clone, Debug, Default)]
pub struct DelayEstimate {
    /// (start of the minute, smallest RTT in it), oldest first.
    base: VecDeque<(Instant, Duration)>,
    current: VecDeque<Duration>,
}

impl DelayEstimate {
    /// Takes in an RTT sample taken at `now`.
    pub fn record(&mut self, now: Instant, rtt: Duration) {
        self.current.push_back(rtt);
        if self.current.len() > CURRENT_FILTER {
            self.current.pop_front();
        }
        match self.base.back_mut() {
            Some((start, min)) if now.duration_since(*start) < Duration::from_secs(60) => {
                *min = (*min).min(rtt);
            }
            _ => {
                self.base.push_back((now, rtt));
                if self.base.len() > BASE_MINUTES {
                    self.base.pop_front();
                }
            }
        }
    }

    /// The smallest RTT remembered, if any sample came.
    pub fn base(&self) -> Option<Duration> {
        self.base.iter().map(|(_, d)| *d).min()
    }

    /// The current RTT (the smallest of the last few samples), if any.
    pub fn current(&self) -> Option<Duration> {
        self.current.iter().min().copied()
    }

    /// Current RTT less the base RTT, if any sample came.
    pub fn queuing(&self) -> Option<Duration> {
        Some(self.current()?.saturating_sub(self.base()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_current_rtt_is_the_least_of_the_last_samples() {
        let mut d = DelayEstimate::default();
        let t0 = Instant::now();
        assert_eq!(d.queuing(), None);
        for rtt in [40, 90, 95, 100, 105] {
            d.record(t0, ms(rtt));
        }
        // 40 is the base; of the last four (90, 95, 100, 105) the least.
        assert_eq!(d.base(), Some(ms(40)));
        assert_eq!(d.current(), Some(ms(90)));
        assert_eq!(d.queuing(), Some(ms(50)));
    }

    #[test]
    fn the_base_ages_out_after_ten_minutes() {
        let mut d = DelayEstimate::default();
        let t0 = Instant::now();
        d.record(t0, ms(40));
        let mut now = t0;
        for minute in 1..=BASE_MINUTES as u64 {
            now = t0 + Duration::from_secs(60 * minute);
            d.record(now, ms(80));
            if minute < BASE_MINUTES as u64 {
                assert_eq!(d.base(), Some(ms(40)), "minute {minute}");
            }
        }
        d.record(now + Duration::from_secs(61), ms(80));
        assert_eq!(d.base(), Some(ms(80)), "the 40 ms minute aged out");
        assert_eq!(d.queuing(), Some(Duration::ZERO));
    }
}
