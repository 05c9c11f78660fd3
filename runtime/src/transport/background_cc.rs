//! The background endpoint's congestion control: [`Ledbat`] behind quinn's
//! `Controller` trait. The foreground endpoint keeps quinn's default
//! (CUBIC). Each RTT sample is the time from sending a packet to the ACK
//! that covers it, as quinn reports it.

use std::any::Any;
use std::sync::Arc;
use std::time::Instant;

use branchline_actors::ledbat::{Ledbat, LedbatConfig};
use quinn::congestion::{Controller, ControllerFactory};
use quinn_proto::RttEstimator;

/// Builds one [`Ledbat`] per connection.
#[derive(Debug, Clone, Copy)]
pub struct LedbatFactory(pub LedbatConfig);

impl ControllerFactory for LedbatFactory {
    fn build(self: Arc<Self>, _now: Instant, current_mtu: u16) -> Box<dyn Controller> {
        let ledbat = Ledbat::new(self.0, u64::from(current_mtu));
        Box::new(LedbatController {
            initial: ledbat.window(),
            ledbat,
        })
    }
}

#[derive(Debug, Clone)]
struct LedbatController {
    ledbat: Ledbat,
    initial: u64,
}

impl Controller for LedbatController {
    fn on_ack(
        &mut self,
        now: Instant,
        sent: Instant,
        bytes: u64,
        app_limited: bool,
        _rtt: &RttEstimator,
    ) {
        self.ledbat
            .on_ack(now, now.saturating_duration_since(sent), bytes, app_limited);
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
