//! A connection's request rate, for every endpoint that answers requests
//! (the server's control endpoint, a client's peer endpoints): a bucket of
//! requests per second, and a bucket of refusals. A request over the rate
//! is refused; a connection that keeps on after a second's worth of
//! refusals is closed ([`TOO_MANY_REQUESTS`]), so a flooding peer is cut
//! off rather than served refusals forever. Plain logic that takes `now`.

use std::time::Instant;

use branchline_actors::pacing::token_bucket::TokenBucket;

/// The QUIC application error code of a connection closed for too many
/// requests.
pub const TOO_MANY_REQUESTS: u32 = 0x29;

/// What the rate allows a new request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// Serve it.
    Yes,
    /// Refuse it (busy).
    Refused,
    /// Close the connection.
    Close,
}

/// One connection's request rate.
#[derive(Debug)]
pub struct RequestRate {
    requests: TokenBucket,
    refusals: TokenBucket,
}

impl RequestRate {
    /// `per_sec` requests a second (and in a burst), and as many refusals
    /// before the connection is closed.
    pub fn new(per_sec: u32) -> Self {
        let per_sec = u64::from(per_sec.max(1));
        RequestRate {
            requests: TokenBucket::new(per_sec, per_sec),
            refusals: TokenBucket::new(per_sec, per_sec),
        }
    }

    /// What to do with a request arriving at `now`.
    pub fn admit(&mut self, now: Instant) -> Admitted {
        if self.requests.try_take(1, now) {
            Admitted::Yes
        } else if self.refusals.try_take(1, now) {
            Admitted::Refused
        } else {
            Admitted::Close
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_is_served_then_refused_then_the_connection_closed_and_a_steady_rate_never() {
        let t0 = Instant::now();
        let mut rate = RequestRate::new(10);
        let first: Vec<Admitted> = (0..25).map(|_| rate.admit(t0)).collect();
        assert!(first[..10].iter().all(|a| *a == Admitted::Yes));
        assert!(first[10..20].iter().all(|a| *a == Admitted::Refused));
        assert!(first[20..].iter().all(|a| *a == Admitted::Close));
        let mut steady = RequestRate::new(10);
        for i in 0..1_000 {
            let at = t0 + Duration::from_millis(100 * i);
            assert_eq!(steady.admit(at), Admitted::Yes, "request {i}");
        }
    }
}
