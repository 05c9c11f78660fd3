//! The one clock of the actors: tokio's, as a `std::time::Instant`. On a
//! node it is the system's monotonic clock. Under a paused tokio clock (the
//! harness in simulated time) it is the simulated time, so the decisions
//! that count time (heartbeat expiry, lease lifetimes, RVP patience,
//! backoffs, pacing) follow the same clock as the timers that drive them.
//! Actors take `now` from here, never from `crate::clock::now()`.

use std::time::Instant;

/// Now, by tokio's clock.
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}
