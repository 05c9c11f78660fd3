//! What a download knows of its sources, kept up to date from the server's
//! sources answers, complete or delta (see
//! [`answer_delta`](crate::server::answer_delta)).
//!
//! A delta applies only to the answer it was made against. One that does
//! not fit (its base is not the version known) is dropped and the version
//! goes back to 0, so the next question asks for a complete answer.

use std::collections::BTreeMap;

use branchline_storage::{NodeId, PieceMap};

use crate::wire::{HaveUpdate, PeerHolding, SourcesAnswer};

/// A download's sources.
#[derive(Clone, Debug)]
pub struct KnownSources {
    pieces: u32,
    version: u64,
    peers: BTreeMap<NodeId, PeerHolding>,
    leased_elsewhere: PieceMap,
}

impl KnownSources {
    /// Nothing known yet about a content of `pieces` pieces.
    pub fn new(pieces: u32) -> Self {
        KnownSources {
            pieces,
            version: 0,
            peers: BTreeMap::new(),
            leased_elsewhere: PieceMap::new(pieces),
        }
    }

    /// The version of the last answer applied (0: ask for a complete one).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Every known peer with everything it holds.
    pub fn peers(&self) -> impl Iterator<Item = &PeerHolding> {
        self.peers.values()
    }

    /// Pieces other clients are fetching from the origin.
    pub fn leased_elsewhere(&self) -> &PieceMap {
        &self.leased_elsewhere
    }

    /// Takes in an answer. False if it was a delta against another version
    /// than the one known: nothing changed, and the next question asks for
    /// a complete answer.
    pub fn apply(&mut self, answer: &SourcesAnswer) -> bool {
        if answer.base != 0 && answer.base != self.version {
            self.version = 0;
            return false;
        }
        if answer.base == 0 {
            self.peers.clear();
        }
        for gone in &answer.gone {
            self.peers.remove(gone);
        }
        for update in &answer.peers {
            let have = match (&update.have, self.peers.get(&update.id)) {
                (HaveUpdate::Whole(have), _) if have.len() == self.pieces => have.clone(),
                (HaveUpdate::Gained(pieces), Some(known)) => {
                    let mut have = known.have.clone();
                    for &i in pieces.iter().filter(|&&i| i < self.pieces) {
                        have.set(i);
                    }
                    have
                }
                // A map of the wrong length, or gains of a peer this node
                // dropped (a banned one): nothing to keep.
                _ => continue,
            };
            self.peers.insert(
                update.id,
                PeerHolding {
                    id: update.id,
                    addr: update.addr,
                    have,
                    upstream: update.upstream,
                    rank: update.rank,
                },
            );
        }
        if let Some(leased) = &answer.leased_elsewhere
            && leased.len() == self.pieces
        {
            self.leased_elsewhere = leased.clone();
        }
        self.version = answer.version;
        true
    }

    /// Forgets a peer (banned): later gains of it are ignored.
    pub fn forget(&mut self, id: &NodeId) {
        self.peers.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::wire::PeerUpdate;

    fn update(n: u8, have: HaveUpdate) -> PeerUpdate {
        PeerUpdate {
            id: NodeId([n; 16]),
            addr: SocketAddr::from(([127, 0, 0, n], 7000)),
            upstream: false,
            rank: 0,
            have,
        }
    }

    fn map(set: &[u32]) -> PieceMap {
        let mut m = PieceMap::new(8);
        set.iter().for_each(|&i| {
            m.set(i);
        });
        m
    }

    fn answer(version: u64, base: u64, peers: Vec<PeerUpdate>, gone: Vec<NodeId>) -> SourcesAnswer {
        SourcesAnswer {
            version,
            base,
            peers,
            gone,
            leased_elsewhere: None,
            granted: Vec::new(),
            upstream_link: None,
        }
    }

    fn have_of(known: &KnownSources, n: u8) -> Option<Vec<u32>> {
        known
            .peers()
            .find(|p| p.id == NodeId([n; 16]))
            .map(|p| p.have.iter_set().collect())
    }

    #[test]
    fn deltas_add_to_the_complete_answer_they_follow() {
        let mut known = KnownSources::new(8);
        let full = answer(
            4,
            0,
            vec![
                update(1, HaveUpdate::Whole(map(&[0]))),
                update(2, HaveUpdate::Whole(map(&[1]))),
            ],
            vec![],
        );
        assert!(known.apply(&full));
        let delta = answer(
            6,
            4,
            vec![
                update(1, HaveUpdate::Gained(vec![2, 3])),
                update(3, HaveUpdate::Whole(map(&[7]))),
            ],
            vec![NodeId([2; 16])],
        );
        assert!(known.apply(&delta));
        assert_eq!(known.version(), 6);
        assert_eq!(have_of(&known, 1), Some(vec![0, 2, 3]));
        assert_eq!(have_of(&known, 2), None, "gone");
        assert_eq!(have_of(&known, 3), Some(vec![7]));
    }

    #[test]
    fn a_delta_against_another_version_is_dropped_and_asks_for_a_complete_answer() {
        let mut known = KnownSources::new(8);
        assert!(known.apply(&answer(
            4,
            0,
            vec![update(1, HaveUpdate::Whole(map(&[0])))],
            vec![]
        )));
        assert!(!known.apply(&answer(
            9,
            5,
            vec![update(1, HaveUpdate::Gained(vec![5]))],
            vec![]
        )));
        assert_eq!(known.version(), 0);
        assert_eq!(have_of(&known, 1), Some(vec![0]), "unchanged");
        let full = answer(9, 0, vec![update(2, HaveUpdate::Whole(map(&[3])))], vec![]);
        assert!(known.apply(&full));
        assert_eq!(have_of(&known, 1), None, "a complete answer replaces all");
    }

    #[test]
    fn wrong_lengths_out_of_range_pieces_and_forgotten_peers_are_ignored() {
        let mut known = KnownSources::new(8);
        let full = answer(
            2,
            0,
            vec![
                update(1, HaveUpdate::Whole(PieceMap::new(9))),
                update(2, HaveUpdate::Whole(map(&[]))),
            ],
            vec![],
        );
        assert!(known.apply(&full));
        assert_eq!(have_of(&known, 1), None);
        known.forget(&NodeId([2; 16]));
        let delta = answer(3, 2, vec![update(2, HaveUpdate::Gained(vec![1]))], vec![]);
        assert!(known.apply(&delta));
        assert_eq!(have_of(&known, 2), None);
        let mut known = KnownSources::new(8);
        assert!(known.apply(&answer(
            2,
            0,
            vec![update(1, HaveUpdate::Whole(map(&[])))],
            vec![]
        )));
        assert!(known.apply(&answer(
            3,
            2,
            vec![update(1, HaveUpdate::Gained(vec![1, 8, 99]))],
            vec![]
        )));
        assert_eq!(have_of(&known, 1), Some(vec![1]));
    }
}
