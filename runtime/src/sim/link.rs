//! A simulated link: a rate, a one-way delay and a share of requests lost,
//! with a queue, so pieces sent across it at once wait their turn as they
//! would behind a real bottleneck.

use std::time::Duration;

use tokio::time::Instant;

/// What a link is like.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Link {
    /// Its rate in Mbit/s; `None`: no limit.
    pub rate_mbit: Option<f64>,
    /// Its one-way delay.
    pub delay: Duration,
    /// The share (0 to 1) of piece requests across it that fail, as a
    /// connection that breaks does: the asker sees an unreachable peer and
    /// tries again elsewhere. (Packet loss within a transfer is QUIC's to
    /// recover, and shows as rate.)
    pub loss: f64,
}

impl Link {
    /// A LAN: 1 Gbit/s, 0.2 ms, nothing lost.
    pub const LAN: Link = Link {
        rate_mbit: Some(1000.0),
        delay: Duration::from_micros(200),
        loss: 0.0,
    };

    /// A WAN link of `rate_mbit` and `delay_ms`, nothing lost.
    pub fn wan(rate_mbit: f64, delay_ms: u64) -> Self {
        Link {
            rate_mbit: Some(rate_mbit),
            delay: Duration::from_millis(delay_ms),
            loss: 0.0,
        }
    }

    /// When `bytes` sent at `at` arrive if nothing is ahead of them.
    pub fn unqueued(&self, bytes: u64, at: Instant) -> Instant {
        at + self.transmission(bytes) + self.delay
    }

    /// How long `bytes` take to leave at its rate.
    fn transmission(&self, bytes: u64) -> Duration {
        match self.rate_mbit {
            Some(mbit) if mbit > 0.0 => Duration::from_secs_f64(bytes as f64 * 8.0 / (mbit * 1e6)),
            _ => Duration::ZERO,
        }
    }
}

/// A link with its queue and the bytes it carried.
#[derive(Debug)]
pub struct Queue {
    link: Link,
    busy_until: Option<Instant>,
    carried: u64,
}

impl Queue {
    /// An idle `link`.
    pub fn new(link: Link) -> Self {
        Queue {
            link,
            busy_until: None,
            carried: 0,
        }
    }

    /// The link.
    pub fn link(&self) -> Link {
        self.link
    }

    /// Sends `bytes` that reach the link at `at`: they leave once the
    /// bytes ahead of them have, at the link's rate; returns when they
    /// arrive at the far end.
    pub fn carry(&mut self, bytes: u64, at: Instant) -> Instant {
        let start = self.busy_until.map_or(at, |busy| busy.max(at));
        let done = start + self.link.transmission(bytes);
        self.busy_until = Some(done);
        self.carried += bytes;
        done + self.link.delay
    }

    /// Bytes it carried so far.
    pub fn carried(&self) -> u64 {
        self.carried
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_sent_at_once_queue_behind_each_other() {
        let at = Instant::now();
        let mut q = Queue::new(Link::wan(8.0, 40)); // 1 MB/s
        let first = q.carry(1_000_000, at);
        let second = q.carry(1_000_000, at);
        assert_eq!(first - at, Duration::from_millis(1040));
        assert_eq!(second - at, Duration::from_millis(2040));
        let later = q.carry(1_000_000, at + Duration::from_secs(10));
        assert_eq!(later - at, Duration::from_millis(11_040), "an idle link");
        assert_eq!(q.carried(), 3_000_000);
    }
}
