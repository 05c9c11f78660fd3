//! Which incoming connections a transport admits: at most
//! `per_peer` open at once from one IP address, so a peer that opens
//! connection after connection (each would get its own peer session) is
//! refused before its handshake costs anything. A plain counter; the
//! accept loop admits, and releases when a connection ends or its
//! handshake fails.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Open connections per peer address, capped.
#[derive(Debug)]
pub struct Admission {
    per_peer: usize,
    open: HashMap<IpAddr, usize>,
}

impl Admission {
    /// Admits up to `per_peer` (at least 1) connections per address.
    pub fn new(per_peer: usize) -> Self {
        Admission {
            per_peer: per_peer.max(1),
            open: HashMap::new(),
        }
    }

    /// Counts a new connection from `ip` if it is under the cap.
    pub fn try_admit(&mut self, ip: IpAddr) -> bool {
        let open = self.open.entry(ip).or_default();
        if *open >= self.per_peer {
            return false;
        }
        *open += 1;
        true
    }

    /// A connection from `ip` ended.
    pub fn release(&mut self, ip: IpAddr) {
        if let Some(open) = self.open.get_mut(&ip) {
            *open -= 1;
            if *open == 0 {
                self.open.remove(&ip);
            }
        }
    }
}

/// An [`Admission`] shared by the accept loop and the tasks that watch
/// the connections end.
pub type SharedAdmission = Arc<Mutex<Admission>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_gets_its_cap_and_a_slot_back_when_one_ends() {
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let mut admission = Admission::new(2);
        assert!(admission.try_admit(a));
        assert!(admission.try_admit(a));
        assert!(!admission.try_admit(a), "third from the same address");
        assert!(admission.try_admit(b), "others are not affected");
        admission.release(a);
        assert!(admission.try_admit(a));
        admission.release(b);
        admission.release(b);
        assert!(!admission.open.contains_key(&b), "no count below zero");
    }
}
