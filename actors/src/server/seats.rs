//! The server's cap on registered clients, shared by every office actor:
//! each takes a seat when a client new to it registers and gives it back
//! when the client leaves, expires or moves to another office.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Registered clients a server holds at most, unless configured.
pub const DEFAULT_MAX_CLIENTS: usize = 200_000;

/// Seats for registered clients.
#[derive(Debug)]
pub struct Seats {
    taken: AtomicUsize,
    max: usize,
}

impl Default for Seats {
    fn default() -> Self {
        Seats::new(DEFAULT_MAX_CLIENTS)
    }
}

impl Seats {
    /// `max` seats, none taken.
    pub fn new(max: usize) -> Self {
        Seats {
            taken: AtomicUsize::new(0),
            max,
        }
    }

    /// Takes a seat; false when every seat is taken.
    pub fn take(&self) -> bool {
        self.taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Takes a seat whatever the cap (a client the store kept, or one that
    /// moves from an office to another).
    pub fn take_anyway(&self) {
        self.taken.fetch_add(1, Ordering::AcqRel);
    }

    /// Gives a seat back.
    pub fn give_back(&self) {
        let _ = self
            .taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// Seats taken.
    pub fn taken(&self) -> usize {
        self.taken.load(Ordering::Acquire)
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.max
    }
}
