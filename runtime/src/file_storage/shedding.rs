//! Which connection gives way when the file storage is full: the oldest
//! one still in its TLS handshake. An idle flood (connections that never
//! finish a handshake) fills the storage's slots; each new connection then
//! sheds the oldest of them, so an honest client, whose handshake takes
//! milliseconds, always gets in.

use std::collections::BTreeMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

/// Connections in their handshake, oldest first, each with the way to
/// tell it to give up.
#[derive(Debug, Default)]
pub struct Shedder {
    inner: Mutex<Handshaking>,
}

#[derive(Debug, Default)]
struct Handshaking {
    next: u64,
    waiting: BTreeMap<u64, oneshot::Sender<()>>,
}

impl Shedder {
    /// A connection starts its handshake: its ticket, and what tells it to
    /// give up.
    pub fn enter(&self) -> (u64, oneshot::Receiver<()>) {
        let (shed, told) = oneshot::channel();
        let mut inner = branchline_actors::lock_unpoisoned(&self.inner);
        let ticket = inner.next;
        inner.next += 1;
        inner.waiting.insert(ticket, shed);
        (ticket, told)
    }

    /// The connection finished (or failed) its handshake.
    pub fn leave(&self, ticket: u64) {
        branchline_actors::lock_unpoisoned(&self.inner)
            .waiting
            .remove(&ticket);
    }

    /// Tells the oldest connection still in its handshake to give up;
    /// false if there is none.
    pub fn shed_oldest(&self) -> bool {
        let oldest = branchline_actors::lock_unpoisoned(&self.inner)
            .waiting
            .pop_first();
        match oldest {
            Some((_, shed)) => {
                let _ = shed.send(());
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_in_its_handshake_is_shed_and_one_that_finished_never() {
        let s = Shedder::default();
        let (first, mut first_told) = s.enter();
        let (second, mut second_told) = s.enter();
        s.leave(first);
        assert!(s.shed_oldest());
        assert!(first_told.try_recv().is_err(), "it finished: never shed");
        assert!(second_told.try_recv().is_ok());
        s.leave(second);
        assert!(!s.shed_oldest(), "nobody left to shed");
    }
}
