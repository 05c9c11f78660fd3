//! The origin side of the picker: which origins are usable, the leases
//! the server granted this node, and the leases it wants, gives back or
//! can no longer use.

use std::time::Instant;

use super::{OriginState, Picker};

impl Picker {
    /// Origins the server named after the transfer started without any
    /// (its manifest came from a peer while the server was out of reach).
    /// Ignored once origins are known.
    pub fn learn_origins(&mut self, count: usize) {
        if self.origins.is_empty() {
            self.origins = vec![OriginState::default(); count];
        }
    }

    /// Origins not set aside.
    pub fn usable_origins(&self) -> u32 {
        let n = self.origins.iter().filter(|o| !o.set_aside).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Origin leases this node holds, and pieces leased to others.
    pub fn leases(&self) -> (u32, u32) {
        let granted = u32::try_from(self.granted.len()).unwrap_or(u32::MAX);
        (granted, self.leased_elsewhere.count())
    }

    /// True when the content had origins and every one has been set aside.
    /// A content known without origins (its manifest came from a peer while
    /// the server was out of reach) waits for peers instead.
    pub fn origins_exhausted(&self) -> bool {
        !self.origins.is_empty() && self.origins.iter().all(|o| o.set_aside)
    }

    /// The server is out of reach, so nobody grants leases: every missing
    /// piece that no known peer holds may go to the origin (if any origin
    /// is known and usable). Several clients of an office may then take
    /// the same piece from the origin; the next answer from the server
    /// puts its leases back in charge.
    pub fn grant_unheld(&mut self) {
        if self.origins.is_empty() || self.origins_exhausted() {
            return;
        }
        let unheld: Vec<u32> = self
            .have
            .iter_missing()
            .filter(|&i| self.holders(i) == 0)
            .collect();
        self.granted.extend(unheld);
    }

    /// How many more origin leases this node would use now: pieces no usable
    /// peer holds (or that are stuck) and nobody else is fetching, up to the
    /// free origin slots.
    pub fn wanted_leases(&self, now: Instant) -> u32 {
        if self.origins.is_empty() || self.origins_exhausted() {
            return 0;
        }
        let slots = self
            .limits
            .origin
            .saturating_sub(self.origin_in_flight() + self.granted_waiting());
        let needed = self
            .wanted()
            .filter(|&i| {
                (self.holders(i) == 0 || self.stuck.is_stuck(i, now))
                    && !self.leased_elsewhere.get(i)
                    && !self.granted.contains(&i)
            })
            .take(slots as usize)
            .count();
        u32::try_from(needed).unwrap_or(u32::MAX)
    }

    fn granted_waiting(&self) -> u32 {
        let n = self
            .granted
            .iter()
            .filter(|i| !self.pieces_in_flight.contains(i))
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Missing pieces whose peer requests kept failing past the deadline,
    /// for the server to lease from the origin although peers claim them.
    pub fn stuck_pieces(&self, now: Instant) -> Vec<u32> {
        let mut stuck = self.stuck.stuck(now);
        stuck.retain(|&i| !self.have.get(i));
        stuck
    }

    /// Leases to give back to the server (taken once).
    pub fn take_releases(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.to_release).into_iter().collect()
    }

    /// Every lease this node holds, given back at once: for a transfer that
    /// ends without finishing, so the office's other clients need not wait
    /// out the leases' time to take those pieces from the origin.
    pub fn take_every_lease(&mut self) -> Vec<u32> {
        let granted = std::mem::take(&mut self.granted);
        self.to_release.extend(granted);
        self.take_releases()
    }

    /// Pieces nobody can supply: missing, not in flight, no peer holds them,
    /// no one holds a lease and every origin is set aside.
    pub fn unobtainable(&self) -> Vec<u32> {
        if !self.origins_exhausted() {
            return Vec::new();
        }
        self.wanted()
            .filter(|&i| self.holders(i) == 0 && !self.leased_elsewhere.get(i))
            .collect()
    }
}
