//! The busy pause (B5): background transfers into this node's office stop
//! asking the office above for pieces while the WAN link in is busy with
//! other traffic, and start again by themselves when it clears.
//!
//! [`BusyMonitor`] is a plain state machine fed with the RTT samples of the
//! node's background connections to the office above (its requests and
//! keep-alives: their acknowledgements come back through the downstream
//! bottleneck queue, so the samples see that queue). [`LinkPause`] shares
//! one monitor between those connections (on the transport's thread) and
//! the downloads that ask it whether to send (on the office's).
//!
//! - **Pause** when the queuing delay (the [`DelayEstimate`], whose current
//!   RTT is the least of the last few samples, so one slow sample is not
//!   enough) stays at or above `pause_delay` for `pause_after`. The
//!   background controller has by then cut its own share to a trickle, so
//!   the queue is someone else's.
//! - **Resume** when every sample for `resume_after` read below
//!   `pause_delay`. While paused only keep-alives measure the link.
//! - A pause with no sample for [`STALE_AFTER`] (the connection went away)
//!   ends: no evidence is no reason to hold the downloads. A gap in the
//!   samples longer than `pause_after` (or `resume_after`) also starts the
//!   busy (or clear) clock again, so old evidence never decides.
//! - **Limits.** The queue measured is the one the sending side's
//!   controller leaves (its node's `[background]`), and the base RTT is
//!   the least over every connection to the office above: upstream peers
//!   whose base RTTs differ by more than `pause_delay` would read as busy
//!   through the slower one.
//! - Requests already sent finish; pieces the office above holds are not
//!   taken from the origin instead (that would cross the same link).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::delay::DelayEstimate;

/// A pause with no RTT sample for this long ends.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

/// When to pause and resume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusyConfig {
    /// Pause at all (false: never).
    pub enabled: bool,
    /// Queuing delay at or above which the link counts as busy.
    pub pause_delay: Duration,
    /// How long it must stay busy before the pause.
    pub pause_after: Duration,
    /// How long it must stay clear before the downloads resume.
    pub resume_after: Duration,
}

impl Default for BusyConfig {
    fn default() -> Self {
        BusyConfig {
            enabled: true,
            pause_delay: Duration::from_millis(75),
            pause_after: Duration::from_secs(5),
            resume_after: Duration::from_secs(5),
        }
    }
}

/// What `status` shows of a pause.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PauseView {
    /// Why, in words.
    pub reason: String,
    /// Seconds since it began.
    pub for_secs: f64,
}

#[derive(Clone, Debug)]
enum State {
    Clear {
        busy_since: Option<Instant>,
    },
    Paused {
        since: Instant,
        reason: String,
        clear_since: Option<Instant>,
    },
}

/// The pause state machine of one node's link to the office above.
#[derive(Clone, Debug)]
pub struct BusyMonitor {
    config: BusyConfig,
    delay: DelayEstimate,
    state: State,
    last_sample: Option<Instant>,
    pauses: u64,
}

impl BusyMonitor {
    /// A monitor that has seen nothing yet.
    pub fn new(config: BusyConfig) -> Self {
        BusyMonitor {
            config,
            delay: DelayEstimate::default(),
            state: State::Clear { busy_since: None },
            last_sample: None,
            pauses: 0,
        }
    }

    /// Takes in an RTT sample of a background connection, taken at `now`.
    pub fn on_rtt(&mut self, now: Instant, rtt: Duration) {
        let gap = self
            .last_sample
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        self.delay.record(now, rtt);
        self.last_sample = Some(now);
        match &mut self.state {
            State::Clear { busy_since } if gap > self.config.pause_after => *busy_since = None,
            State::Paused { clear_since, .. } if gap > self.config.resume_after => {
                *clear_since = None;
            }
            _ => {}
        }
        let (Some(queuing), Some(base)) = (self.delay.queuing(), self.delay.base()) else {
            return;
        };
        let threshold = self.config.pause_delay;
        match &mut self.state {
            State::Clear { busy_since } => {
                if !self.config.enabled || queuing < threshold {
                    *busy_since = None;
                    return;
                }
                let since = *busy_since.get_or_insert(now);
                if now.saturating_duration_since(since) >= self.config.pause_after {
                    self.pauses += 1;
                    self.state = State::Paused {
                        since: now,
                        reason: format!(
                            "WAN link busy: queuing delay {} ms, at or above {} ms for {} s",
                            queuing.as_millis(),
                            threshold.as_millis(),
                            self.config.pause_after.as_secs_f64()
                        ),
                        clear_since: None,
                    };
                }
            }
            State::Paused { clear_since, .. } => {
                if rtt.saturating_sub(base) >= threshold {
                    *clear_since = None;
                    return;
                }
                let since = *clear_since.get_or_insert(now);
                if now.saturating_duration_since(since) >= self.config.resume_after {
                    self.state = State::Clear { busy_since: None };
                }
            }
        }
    }

    /// The pause in force at `now`, if any (a stale one ends here).
    pub fn paused(&mut self, now: Instant) -> Option<PauseView> {
        let State::Paused { since, reason, .. } = &self.state else {
            return None;
        };
        let stale = self
            .last_sample
            .is_none_or(|t| now.saturating_duration_since(t) >= STALE_AFTER);
        if stale {
            self.state = State::Clear { busy_since: None };
            return None;
        }
        Some(PauseView {
            reason: reason.clone(),
            for_secs: now.saturating_duration_since(*since).as_secs_f64(),
        })
    }

    /// Pauses so far.
    pub fn pauses(&self) -> u64 {
        self.pauses
    }

    /// The queuing delay now, if any sample came.
    pub fn queuing_delay(&self) -> Option<Duration> {
        self.delay.queuing()
    }
}

/// One [`BusyMonitor`] shared by the connections that feed it and the
/// downloads that obey it.
#[derive(Clone, Debug)]
pub struct LinkPause(Arc<Mutex<BusyMonitor>>);

impl Default for LinkPause {
    fn default() -> Self {
        LinkPause::new(BusyConfig::default())
    }
}

impl LinkPause {
    /// A shared monitor with `config`.
    pub fn new(config: BusyConfig) -> Self {
        LinkPause(Arc::new(Mutex::new(BusyMonitor::new(config))))
    }

    fn monitor(&self) -> std::sync::MutexGuard<'_, BusyMonitor> {
        // The monitor holds no invariant a panicking holder could break
        // halfway; keep using it.
        crate::lock_unpoisoned(&self.0)
    }

    /// See [`BusyMonitor::on_rtt`].
    pub fn on_rtt(&self, now: Instant, rtt: Duration) {
        self.monitor().on_rtt(now, rtt);
    }

    /// See [`BusyMonitor::paused`].
    pub fn paused(&self, now: Instant) -> Option<PauseView> {
        self.monitor().paused(now)
    }

    /// Pauses so far, and the queuing delay now.
    pub fn stats(&self) -> (u64, Option<Duration>) {
        let m = self.monitor();
        (m.pauses(), m.queuing_delay())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Feeds one sample every 100 ms for `secs`, returning the time after.
    fn feed(m: &mut BusyMonitor, mut now: Instant, secs: u64, rtt: Duration) -> Instant {
        for _ in 0..secs * 10 {
            now += ms(100);
            m.on_rtt(now, rtt);
        }
        now
    }

    #[test]
    fn a_queue_that_stays_pauses_after_the_delay_and_names_its_reason() {
        let mut m = BusyMonitor::new(BusyConfig::default());
        let t0 = Instant::now();
        let now = feed(&mut m, t0, 3, ms(80)); // base 80 ms, idle link
        assert_eq!(m.paused(now), None);
        let now = feed(&mut m, now, 4, ms(200)); // 120 ms of queue for 4 s
        assert_eq!(m.paused(now), None, "not yet 5 s");
        let now = feed(&mut m, now, 2, ms(200));
        let pause = m.paused(now).expect("paused after 5 s");
        assert_eq!(
            pause.reason,
            "WAN link busy: queuing delay 120 ms, at or above 75 ms for 5 s"
        );
        assert!(pause.for_secs < 1.5, "{pause:?}");
        assert_eq!(m.pauses(), 1);
    }

    #[test]
    fn short_bursts_and_single_slow_samples_do_not_pause() {
        let mut m = BusyMonitor::new(BusyConfig::default());
        let mut now = feed(&mut m, Instant::now(), 2, ms(80));
        for _ in 0..20 {
            now = feed(&mut m, now, 3, ms(200)); // 3 s busy ...
            now = feed(&mut m, now, 1, ms(85)); // ... then a clear second
        }
        // One slow sample in every four never lifts the current RTT.
        for i in 0..200 {
            now += ms(100);
            m.on_rtt(now, if i % 4 == 0 { ms(400) } else { ms(82) });
        }
        assert_eq!(m.paused(now), None);
        assert_eq!(m.pauses(), 0);
    }

    #[test]
    fn it_resumes_after_the_link_stays_clear_and_not_before() {
        let mut m = BusyMonitor::new(BusyConfig::default());
        let now = feed(&mut m, Instant::now(), 2, ms(80));
        let now = feed(&mut m, now, 6, ms(250));
        assert!(m.paused(now).is_some());
        // Clear for 4 s, then one busy sample: the clock starts again.
        let mut now = feed(&mut m, now, 4, ms(90)) + ms(100);
        m.on_rtt(now, ms(300));
        assert!(m.paused(now).is_some());
        now = feed(&mut m, now, 4, ms(90));
        assert!(m.paused(now).is_some(), "4 s clear is not enough");
        now = feed(&mut m, now, 2, ms(90));
        assert_eq!(m.paused(now), None, "resumed after 5 s clear");
        // Busy again: a second pause.
        let now = feed(&mut m, now, 6, ms(250));
        assert!(m.paused(now).is_some());
        assert_eq!(m.pauses(), 2);
    }

    #[test]
    fn a_pause_without_samples_goes_stale_and_disabled_never_pauses() {
        let mut m = BusyMonitor::new(BusyConfig::default());
        let now = feed(&mut m, Instant::now(), 2, ms(80));
        let now = feed(&mut m, now, 6, ms(250));
        assert!(m.paused(now).is_some());
        assert!(m.paused(now + STALE_AFTER - ms(1)).is_some());
        assert_eq!(m.paused(now + STALE_AFTER), None, "stale");

        let mut off = BusyMonitor::new(BusyConfig {
            enabled: false,
            ..BusyConfig::default()
        });
        let now = feed(&mut off, Instant::now(), 2, ms(80));
        let now = feed(&mut off, now, 30, ms(250));
        assert_eq!(off.paused(now), None);
    }

    #[test]
    fn evidence_from_before_a_gap_in_the_samples_does_not_count() {
        let mut m = BusyMonitor::new(BusyConfig::default());
        let now = feed(&mut m, Instant::now(), 2, ms(80));
        // 4 s busy, 20 s without a sample, then busy again: the clock
        // starts at the new sample, not 24 s earlier.
        let now = feed(&mut m, now, 4, ms(250)) + Duration::from_secs(20);
        m.on_rtt(now, ms(250));
        assert_eq!(m.paused(now), None);
        let now = feed(&mut m, now, 6, ms(250));
        assert!(m.paused(now).is_some());
    }
}
