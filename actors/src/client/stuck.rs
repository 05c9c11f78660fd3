//! The deadline on a download: pieces that peers said they hold but did
//! not deliver. A plain state machine that takes `now` as an argument.
//!
//! A piece is **stuck** when every request for it to a peer has failed
//! (refused, busy, timed out, unreachable, bad bytes) since its first
//! failure `after` ago, and it is still missing. A stuck piece may be taken
//! from the origin although peers claim it: the download asks the server
//! for an origin lease on it, and the server grants one even where the
//! office "has" the piece (`Registry::sources`). So a holder that claims a
//! piece and never serves it (its copy rotted and it has not said so yet,
//! it is overloaded, or it lies) delays a download by `after` at most,
//! never forever. Waiting for a lease someone else holds, or for the RVP
//! to bring a piece, is not a failure and never makes a piece stuck.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Stuck pieces named in one sources query at most (the server caps it
/// too: [`MAX_STUCK_PER_QUERY`]).
pub const MAX_STUCK_PER_QUERY: usize = 64;

/// Pieces whose peer requests keep failing, and since when.
#[derive(Debug, Clone)]
pub struct StuckPieces {
    after: Duration,
    failing_since: BTreeMap<u32, Instant>,
}

impl StuckPieces {
    /// Pieces become stuck `after` their first failure without a success.
    pub fn new(after: Duration) -> Self {
        StuckPieces {
            after,
            failing_since: BTreeMap::new(),
        }
    }

    /// A request to a peer for `index` failed at `now`.
    pub fn failed(&mut self, index: u32, now: Instant) {
        self.failing_since.entry(index).or_insert(now);
    }

    /// `index` is stored: it is no longer failing.
    pub fn stored(&mut self, index: u32) {
        self.failing_since.remove(&index);
    }

    /// True if `index` has been failing for at least the deadline.
    pub fn is_stuck(&self, index: u32, now: Instant) -> bool {
        self.failing_since
            .get(&index)
            .is_some_and(|&since| now.duration_since(since) >= self.after)
    }

    /// The stuck pieces, lowest first, at most [`MAX_STUCK_PER_QUERY`].
    pub fn stuck(&self, now: Instant) -> Vec<u32> {
        self.failing_since
            .iter()
            .filter(|&(_, &since)| now.duration_since(since) >= self.after)
            .map(|(&index, _)| index)
            .take(MAX_STUCK_PER_QUERY)
            .collect()
    }

    /// When the next failing piece becomes stuck, if one will.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        self.failing_since
            .values()
            .map(|&since| since + self.after)
            .filter(|&at| at > now)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_failing_piece_when_the_deadline_passes_then_it_is_stuck_until_stored() {
        let t0 = Instant::now();
        let mut s = StuckPieces::new(Duration::from_secs(30));
        s.failed(3, t0);
        s.failed(3, t0 + Duration::from_secs(20)); // the clock runs from the first
        assert!(!s.is_stuck(3, t0 + Duration::from_secs(29)));
        assert_eq!(s.next_deadline(t0), Some(t0 + Duration::from_secs(30)));
        let late = t0 + Duration::from_secs(30);
        assert!(s.is_stuck(3, late));
        assert_eq!(s.stuck(late), vec![3]);
        assert_eq!(s.next_deadline(late), None);
        s.stored(3);
        assert!(!s.is_stuck(3, late) && s.stuck(late).is_empty());
    }

    #[test]
    fn given_many_stuck_pieces_then_a_query_names_a_bounded_number() {
        let t0 = Instant::now();
        let mut s = StuckPieces::new(Duration::from_secs(1));
        for i in 0..1_000 {
            s.failed(i, t0);
        }
        let stuck = s.stuck(t0 + Duration::from_secs(1));
        assert_eq!(stuck.len(), MAX_STUCK_PER_QUERY);
        assert_eq!(stuck[0], 0);
    }
}
