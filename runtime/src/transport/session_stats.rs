//! What one peer session moved: the piece bytes each way, and QUIC's own
//! numbers for its connections (open ones read live, closed ones folded
//! in). Shared by the session actor, its connection slot and status.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use branchline_actors::wire::WireView;

/// Bytes moved in one session, and the session's connections (for QUIC's
/// own numbers).
#[derive(Debug, Default)]
pub struct SessionStats {
    received: AtomicU64,
    served: AtomicU64,
    connections: Mutex<Connections>,
}

#[derive(Debug, Default)]
struct Connections {
    /// Open connections, each with whether this node dialled it.
    open: Vec<(quinn::Connection, bool)>,
    /// What the connections that closed added up to: those the peer
    /// dialled, and those this node dialled.
    closed: [WireView; 2],
}

impl SessionStats {
    /// Counts piece bytes served to the peer.
    pub fn add_served(&self, bytes: u64) {
        self.served.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts piece bytes received from the peer.
    pub fn add_received(&self, bytes: u64) {
        self.received.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Bytes of pieces received from the peer, and served to it.
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.received.load(Ordering::Relaxed),
            self.served.load(Ordering::Relaxed),
        )
    }

    /// Counts `conn`'s numbers in this session's; `dialled`: this node
    /// opened it (its requests to the peer travel on it).
    pub fn track(&self, conn: &quinn::Connection, dialled: bool) {
        let mut c = branchline_actors::lock_unpoisoned(&self.connections);
        c.fold_closed();
        c.open.push((conn.clone(), dialled));
    }

    /// QUIC's numbers for the session's connections: those the peer
    /// dialled and those this node dialled.
    pub fn wire_by_dialler(&self) -> [WireView; 2] {
        let mut c = branchline_actors::lock_unpoisoned(&self.connections);
        c.fold_closed();
        let Connections { open, closed } = &*c;
        let mut total = *closed;
        for (conn, dialled) in open.iter() {
            total[usize::from(*dialled)].add(&wire_view(conn));
        }
        total
    }

    /// The congestion controller of an open connection the peer dialled
    /// (the one this node sends pieces on), if any.
    pub fn serving_controller(&self) -> Option<String> {
        let c = branchline_actors::lock_unpoisoned(&self.connections);
        c.open
            .iter()
            .find(|(conn, dialled)| !dialled && conn.close_reason().is_none())
            .map(|(conn, _)| super::background_cc::describe(conn))
    }

    /// QUIC's numbers for every connection of the session.
    pub fn wire(&self) -> WireView {
        let [theirs, mut ours] = self.wire_by_dialler();
        ours.add(&theirs);
        ours
    }

    /// UDP bytes that arrived on connections this node dialled: pieces it
    /// asked for, with QUIC's overhead and retransmissions.
    pub fn wire_received_on_dialled(&self) -> u64 {
        self.wire_by_dialler()[1].received_bytes
    }
}

impl Connections {
    /// Folds closed connections into the totals and lets them go.
    fn fold_closed(&mut self) {
        let Connections { open, closed } = self;
        open.retain(|(conn, dialled)| {
            let done = conn.close_reason().is_some();
            if done {
                closed[usize::from(*dialled)].add(&wire_view(conn));
            }
            !done
        });
    }
}

fn wire_view(conn: &quinn::Connection) -> WireView {
    let s = conn.stats();
    WireView {
        sent_bytes: s.udp_tx.bytes,
        received_bytes: s.udp_rx.bytes,
        sent_packets: s.path.sent_packets,
        lost_packets: s.path.lost_packets,
        lost_bytes: s.path.lost_bytes,
        congestion_events: s.path.congestion_events,
        rtt_us: (conn.close_reason().is_none())
            .then(|| u64::try_from(s.path.rtt.as_micros()).unwrap_or(u64::MAX)),
    }
}
