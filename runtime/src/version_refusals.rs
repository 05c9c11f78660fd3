//! The nodes the server's control endpoint refused for speaking another
//! protocol version (see [`crate::tls::check_version`]): the newest few
//! hundred, in memory, so the health check can flag devices that need an
//! upgrade (they never register, so the registry cannot show them).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Mutex;

use branchline_actors::wire::VersionRefusal;
use branchline_storage::NodeId;
use branchline_storage::records::unix_ms;

/// Refusals kept; older ones are forgotten.
const KEPT: usize = 256;

/// The refusals of one server.
#[derive(Debug, Default)]
pub struct VersionRefusals(Mutex<VecDeque<VersionRefusal>>);

impl VersionRefusals {
    /// Notes that the node at `from` (`node`, if its certificate names
    /// one) was refused, and why.
    pub fn record(&self, from: SocketAddr, node: Option<NodeId>, reason: String) {
        let mut kept = branchline_actors::lock_unpoisoned(&self.0);
        if kept.len() == KEPT {
            kept.pop_front();
        }
        kept.push_back(VersionRefusal {
            at_ms: unix_ms(),
            from: from.to_string(),
            node: node.map(|n| n.to_string()),
            reason,
        });
    }

    /// The refusals kept, oldest first.
    pub fn recent(&self) -> Vec<VersionRefusal> {
        branchline_actors::lock_unpoisoned(&self.0)
            .iter()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_refusals_are_kept() {
        let refusals = VersionRefusals::default();
        for port in 0..300u16 {
            let from = SocketAddr::from(([127, 0, 0, 1], port));
            refusals.record(from, None, format!("port {port}"));
        }
        let kept = refusals.recent();
        assert_eq!(kept.len(), KEPT);
        assert_eq!(kept[0].reason, "port 44");
        assert_eq!(kept[KEPT - 1].from, "127.0.0.1:299");
    }
}
