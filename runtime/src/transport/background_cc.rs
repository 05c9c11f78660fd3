//! The background endpoint's congestion control: [`Ledbat`] behind quinn's
//! `Controller` trait. The foreground endpoint keeps quinn's default
//! (CUBIC).
//!
//! **RTT samples (decision, B5).** Each sample is the time from sending a
//! packet to the ACK that covers it, and the background endpoint asks its
//! peers (QUIC's ACK frequency extension) to delay an ACK by at most
//! [`MAX_ACK_DELAY`] instead of the default 25 ms. Measured on the testbed:
//! with the window at its minimum (2 packets) every ACK waited out the
//! 25 ms, the samples read as 26 ms of queue on an empty link, and the
//! window stayed at the minimum for good once a competing flow had pushed
//! it there. quinn's smoothed RTT, which takes the ACK delay out, lags by
//! several round trips and cut the idle link's share from 82% to 41%.
//!
//! On connections this node opened (to the office above), every sample also
//! goes to the node's [`LinkPause`]: the acknowledgements of its requests
//! and probes come back through the downstream queue, which is what
//! the busy pause watches.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use branchline_actors::pacing::busy::LinkPause;
use branchline_actors::pacing::ledbat::{Ledbat, LedbatConfig};
use quinn::congestion::{Controller, ControllerFactory};
use quinn_proto::RttEstimator;

/// The longest a peer may hold an ACK on a background connection.
pub const MAX_ACK_DELAY: Duration = Duration::from_millis(2);

/// Builds one [`Ledbat`] per connection, whose samples feed `pause` if
/// given.
#[derive(Debug, Clone)]
pub struct LedbatFactory {
    /// The controller's settings.
    pub config: LedbatConfig,
    /// The busy pause the samples feed (connections this node opens).
    pub pause: Option<LinkPause>,
}

impl ControllerFactory for LedbatFactory {
    fn build(self: Arc<Self>, _now: Instant, current_mtu: u16) -> Box<dyn Controller> {
        let ledbat = Ledbat::new(self.config, u64::from(current_mtu));
        Box::new(LedbatController {
            initial: ledbat.window(),
            ledbat,
            pause: self.pause.clone(),
            traced: None,
        })
    }
}

#[derive(Debug, Clone)]
struct LedbatController {
    ledbat: Ledbat,
    initial: u64,
    pause: Option<LinkPause>,
    /// When the state was last traced (`trace` level, at most every
    /// [`TRACE_EVERY`]).
    traced: Option<Instant>,
}

/// Least time between two trace lines of one connection's controller.
const TRACE_EVERY: Duration = Duration::from_millis(100);

impl Controller for LedbatController {
    fn on_ack(
        &mut self,
        now: Instant,
        sent: Instant,
        bytes: u64,
        app_limited: bool,
        _rtt: &RttEstimator,
    ) {
        let rtt = now.saturating_duration_since(sent);
        self.ledbat.on_ack(now, rtt, bytes, app_limited);
        if let Some(pause) = &self.pause {
            pause.on_rtt(now, rtt);
        }
        if tracing::enabled!(tracing::Level::TRACE)
            && self
                .traced
                .is_none_or(|t| now.saturating_duration_since(t) >= TRACE_EVERY)
        {
            self.traced = Some(now);
            tracing::trace!(
                window = self.ledbat.window(),
                queuing_ms = self.ledbat.queuing_delay().map(|d| d.as_secs_f64() * 1e3),
                base_ms = self.ledbat.base_delay().map(|d| d.as_secs_f64() * 1e3),
                slowdown = self.ledbat.in_slowdown(),
                app_limited,
                "background controller"
            );
        }
    }

    fn on_congestion_event(
        &mut self,
        now: Instant,
        sent: Instant,
        is_persistent_congestion: bool,
        _lost_bytes: u64,
    ) {
        if is_persistent_congestion {
            self.ledbat.on_persistent_congestion(now);
        } else {
            self.ledbat.on_loss(now, sent);
        }
    }

    fn on_mtu_update(&mut self, new_mtu: u16) {
        self.ledbat.set_mss(u64::from(new_mtu));
    }

    fn window(&self) -> u64 {
        self.ledbat.window()
    }

    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(self.clone())
    }

    fn initial_window(&self) -> u64 {
        self.initial
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// Which controller a connection runs, for people: `yielding, target
/// 25 ms` or quinn's default, `CUBIC`.
pub fn describe(conn: &quinn::Connection) -> String {
    match conn
        .congestion_state()
        .into_any()
        .downcast::<LedbatController>()
    {
        Ok(c) => format!(
            "yielding, target {} ms",
            c.ledbat.config().target.as_millis()
        ),
        Err(_) => "CUBIC".to_owned(),
    }
}
