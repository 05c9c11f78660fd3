//! Strikes against peers that sent bytes that failed verification, and
//! bans: a plain state machine, one per node, owned by its office actor.
//!
//! Every bad piece is a strike, kept with its evidence (content, piece,
//! what was expected and what came). A peer is banned at `ban_after`
//! strikes (default 2): no download of this node asks it again, and the
//! node tells the server, which stops offering it to the node's office.
//! One strike alone only rests the peer, since a piece can go bad on the
//! way through a fault that is not the peer's (a flipped bit in RAM); a
//! second is not chance.

use std::collections::BTreeMap;

use branchline_storage::NodeId;

use crate::wire::{BadPiece, StrikeView};

/// Evidence kept per peer (the newest).
pub const EVIDENCE_KEPT: usize = 8;

/// What a strike did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Counted; the peer has this many strikes and is not banned.
    Struck(u32),
    /// The peer is banned now (this strike reached the limit).
    Banned,
    /// The peer was banned already.
    AlreadyBanned,
}

#[derive(Debug, Default)]
struct Record {
    strikes: u32,
    banned: bool,
    evidence: Vec<BadPiece>,
}

/// The node's strikes and bans.
#[derive(Debug)]
pub struct StrikeBook {
    ban_after: u32,
    peers: BTreeMap<NodeId, Record>,
}

impl StrikeBook {
    /// A book that bans at `ban_after` strikes (at least 1).
    pub fn new(ban_after: u32) -> Self {
        StrikeBook {
            ban_after: ban_after.max(1),
            peers: BTreeMap::new(),
        }
    }

    /// Counts a bad piece from `peer`.
    pub fn strike(&mut self, peer: NodeId, evidence: BadPiece) -> Verdict {
        let record = self.peers.entry(peer).or_default();
        record.strikes += 1;
        record.evidence.push(evidence);
        if record.evidence.len() > EVIDENCE_KEPT {
            record.evidence.remove(0);
        }
        if record.banned {
            Verdict::AlreadyBanned
        } else if record.strikes >= self.ban_after {
            record.banned = true;
            Verdict::Banned
        } else {
            Verdict::Struck(record.strikes)
        }
    }

    /// Whether `peer` is banned.
    pub fn is_banned(&self, peer: &NodeId) -> bool {
        self.peers.get(peer).is_some_and(|r| r.banned)
    }

    /// Every banned peer.
    pub fn banned(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.peers
            .iter()
            .filter(|(_, r)| r.banned)
            .map(|(peer, _)| *peer)
    }

    /// The evidence against `peer`, oldest first.
    pub fn evidence(&self, peer: &NodeId) -> Vec<BadPiece> {
        self.peers
            .get(peer)
            .map(|r| r.evidence.clone())
            .unwrap_or_default()
    }

    /// Every struck peer, for status.
    pub fn views(&self) -> Vec<StrikeView> {
        self.peers
            .iter()
            .map(|(peer, r)| StrikeView {
                peer: *peer,
                strikes: r.strikes,
                banned: r.banned,
                evidence: r.evidence.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use branchline_storage::content::Hash;

    use super::*;

    fn bad(piece: u32) -> BadPiece {
        BadPiece {
            content: Hash([7; 32]),
            piece,
            error: format!("piece {piece} hash mismatch"),
        }
    }

    #[test]
    fn a_peer_is_banned_at_the_limit_and_every_strike_keeps_its_evidence() {
        let liar = NodeId([1; 16]);
        let mut book = StrikeBook::new(2);
        assert_eq!(book.strike(liar, bad(3)), Verdict::Struck(1));
        assert!(!book.is_banned(&liar), "one strike only rests it");
        assert_eq!(book.strike(liar, bad(5)), Verdict::Banned);
        assert!(book.is_banned(&liar));
        assert_eq!(book.strike(liar, bad(6)), Verdict::AlreadyBanned);
        let views = book.views();
        assert_eq!(views.len(), 1);
        assert_eq!((views[0].strikes, views[0].banned), (3, true));
        let pieces: Vec<u32> = book.evidence(&liar).iter().map(|e| e.piece).collect();
        assert_eq!(pieces, [3, 5, 6]);
        assert!(!book.is_banned(&NodeId([2; 16])));
    }

    #[test]
    fn one_strike_bans_when_set_so_and_evidence_is_bounded() {
        let liar = NodeId([1; 16]);
        let mut book = StrikeBook::new(0);
        assert_eq!(book.strike(liar, bad(0)), Verdict::Banned, "0 means 1");
        for piece in 1..20 {
            book.strike(liar, bad(piece));
        }
        let kept = book.evidence(&liar);
        assert_eq!(kept.len(), EVIDENCE_KEPT);
        assert_eq!(kept.last().unwrap().piece, 19);
    }
}
