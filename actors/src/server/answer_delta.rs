//! Composes a sources answer as a delta against the last answer the asker
//! saw: only the peers that gained pieces or moved, the peers that are gone,
//! and the leases only if they changed.
//!
//! Every download long-polls for sources again as soon as an answer comes,
//! and a content's version moves with every piece anyone stores. Complete
//! answers therefore sent every office peer's whole have-map several times
//! a second to every downloading client; on a 10-client branch that was
//! about 5% of the WAN link. The server keeps, per asker and content, what
//! its last answer listed ([`Answered`]: a version, and a digest per peer),
//! and the registry's [`HoldingsLog`](crate::server::holdings_log::HoldingsLog)
//! says what changed since. When the asker's `since` is not that version
//! (an answer was lost, the server restarted, the log was trimmed) it gets
//! a complete answer.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use branchline_storage::{NodeId, PieceMap};

use crate::server::holdings_log::HolderChange;
use crate::wire::{HaveUpdate, PeerUpdate, SourcesAnswer, UpstreamLink};

/// A peer chosen for an answer, with everything it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The peer.
    pub id: NodeId,
    /// Where the asker reaches it.
    pub addr: SocketAddr,
    /// In the office up the tree.
    pub upstream: bool,
    /// Its place in its office's election order.
    pub rank: u32,
    /// What it holds.
    pub have: PieceMap,
}

impl Source {
    /// What the asker must be told again if it changes: besides pieces,
    /// which the holdings log of the asker's office tells; for a peer of
    /// the office above, whose changes no log here records, its pieces too.
    fn digest(&self) -> u64 {
        if self.upstream {
            let mut h = DefaultHasher::new();
            (self.addr, self.upstream, self.rank).hash(&mut h);
            (self.have.len(), self.have.raw()).hash(&mut h);
            h.finish()
        } else {
            digest_of(self.addr, false, self.rank)
        }
    }

    fn update(&self, have: HaveUpdate) -> PeerUpdate {
        PeerUpdate {
            id: self.id,
            addr: self.addr,
            upstream: self.upstream,
            rank: self.rank,
            have,
        }
    }
}

/// The digest of a peer's address, place and rank.
fn digest_of(addr: SocketAddr, upstream: bool, rank: u32) -> u64 {
    let mut h = DefaultHasher::new();
    (addr, upstream, rank).hash(&mut h);
    h.finish()
}

/// The lease part of an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leases {
    /// Pieces another client is fetching from the origin.
    pub elsewhere: PieceMap,
    /// The asker's own leases.
    pub granted: Vec<u32>,
    /// The link into the asker's office, if it fetches upstream.
    pub upstream_link: Option<UpstreamLink>,
}

impl Leases {
    fn digest(&self) -> u64 {
        let mut h = DefaultHasher::new();
        (self.elsewhere.len(), self.elsewhere.raw()).hash(&mut h);
        (&self.granted, self.upstream_link).hash(&mut h);
        h.finish()
    }
}

/// The office's members as its answers list them: each id with the
/// digest of what an asker must be told again if it changes (address and
/// rank), sorted by id. The registry keeps the current one and makes a new
/// one only when a member joins, leaves, moves or is ranked anew, so the
/// records of many answers share one.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Roster {
    members: Box<[(NodeId, u64)]>,
}

impl Roster {
    /// The roster of `members` (id, address, rank), in any order.
    pub fn new(members: impl Iterator<Item = (NodeId, SocketAddr, u32)>) -> Self {
        let mut members: Vec<(NodeId, u64)> = members
            .map(|(id, addr, rank)| (id, digest_of(addr, false, rank)))
            .collect();
        members.sort_unstable_by_key(|(id, _)| *id);
        Roster {
            members: members.into_boxed_slice(),
        }
    }

    fn position(&self, peer: &NodeId) -> Option<usize> {
        self.members.binary_search_by(|(id, _)| id.cmp(peer)).ok()
    }
}

/// What the server remembers of the last answer to one asker about one
/// content. The server keeps one per asker and content while the asker
/// keeps asking, each listing up to 64 peers: 100,000 askers took 250 MB
/// as a map of peer digests per answer. The office's peers are now bits
/// over the roster the answer was made with (shared), and only peers
/// outside it (of the office above) are listed with their digests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answered {
    /// The answer's version.
    pub version: u64,
    /// When it was sent (old records are dropped).
    pub at: Instant,
    roster: Arc<Roster>,
    /// Which of `roster`'s members the answer listed, a bit each.
    listed: Box<[u64]>,
    /// The peers it listed that `roster` does not hold as they were, by
    /// id, each with its digest.
    others: Box<[(NodeId, u64)]>,
    leases: u64,
}

impl Answered {
    /// The record of an answer listing `sources`, made with `roster`.
    fn new(
        version: u64,
        sources: &[Source],
        roster: &Arc<Roster>,
        leases: u64,
        now: Instant,
    ) -> Self {
        let mut listed = vec![0u64; roster.members.len().div_ceil(64)];
        let mut others = Vec::new();
        for s in sources {
            let digest = s.digest();
            match roster.position(&s.id) {
                Some(i) if !s.upstream && roster.members[i].1 == digest => {
                    listed[i / 64] |= 1 << (i % 64);
                }
                _ => others.push((s.id, digest)),
            }
        }
        others.sort_unstable_by_key(|(id, _)| *id);
        Answered {
            version,
            at: now,
            roster: roster.clone(),
            listed: listed.into_boxed_slice(),
            others: others.into_boxed_slice(),
            leases,
        }
    }

    /// The digest `peer` had in the answer, if it was listed.
    fn digest_of(&self, peer: &NodeId) -> Option<u64> {
        let in_roster = self
            .roster
            .position(peer)
            .filter(|&i| self.lists_member(i))
            .map(|i| self.roster.members[i].1);
        in_roster.or_else(|| {
            self.others
                .binary_search_by(|(id, _)| id.cmp(peer))
                .ok()
                .map(|i| self.others[i].1)
        })
    }

    /// Whether the answer listed the `i`-th member of its roster.
    fn lists_member(&self, i: usize) -> bool {
        self.listed[i / 64] & (1 << (i % 64)) != 0
    }

    fn listed(&self, peer: &NodeId) -> bool {
        self.digest_of(peer).is_some()
    }

    /// Every peer the answer listed, sorted by id.
    fn peers(&self) -> Vec<NodeId> {
        let mut peers: Vec<NodeId> = self
            .roster
            .members
            .iter()
            .enumerate()
            .filter(|(i, _)| self.lists_member(*i))
            .map(|(_, (id, _))| *id)
            .chain(self.others.iter().map(|(id, _)| *id))
            .collect();
        peers.sort_unstable();
        peers
    }
}

/// The answer of `version` listing `sources` and `leases`: a delta against
/// `last` when given (with what changed in the holdings since), else
/// complete. Returns it with the record of it to keep.
pub fn compose(
    version: u64,
    sources: &[Source],
    roster: &Arc<Roster>,
    last: Option<(&Answered, &HashMap<NodeId, HolderChange>)>,
    leases: Leases,
    now: Instant,
) -> (SourcesAnswer, Answered) {
    let record = Answered::new(version, sources, roster, leases.digest(), now);
    let whole = |s: &Source| s.update(HaveUpdate::Whole(s.have.clone()));
    let answer = match last {
        None => SourcesAnswer {
            version,
            base: 0,
            peers: sources.iter().map(whole).collect(),
            gone: Vec::new(),
            leased_elsewhere: Some(leases.elsewhere),
            granted: leases.granted,
            upstream_link: leases.upstream_link,
        },
        Some((last, changes)) => {
            let peers = sources
                .iter()
                .filter_map(|s| match (last.digest_of(&s.id), changes.get(&s.id)) {
                    (None, _) | (Some(_), Some(HolderChange::Reset)) => Some(whole(s)),
                    (Some(_), Some(HolderChange::Gained(pieces))) => {
                        Some(s.update(HaveUpdate::Gained(pieces.clone())))
                    }
                    (Some(digest), None) if digest == s.digest() => None,
                    // A peer of the office above changed: sent whole.
                    (Some(_), None) if s.upstream => Some(whole(s)),
                    (Some(_), None) => Some(s.update(HaveUpdate::Gained(Vec::new()))),
                })
                .collect();
            let gone: Vec<NodeId> = last
                .peers()
                .into_iter()
                .filter(|id| !record.listed(id))
                .collect();
            SourcesAnswer {
                version,
                base: last.version,
                peers,
                gone,
                leased_elsewhere: (last.leases != record.leases).then_some(leases.elsewhere),
                granted: leases.granted,
                upstream_link: leases.upstream_link,
            }
        }
    };
    (answer, record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(n: u8, pieces: &[u32]) -> Source {
        let mut have = PieceMap::new(16);
        pieces.iter().for_each(|&i| {
            have.set(i);
        });
        Source {
            id: NodeId([n; 16]),
            addr: SocketAddr::from(([127, 0, 0, n], 7000)),
            upstream: false,
            rank: u32::from(n),
            have,
        }
    }

    fn leases() -> Leases {
        Leases {
            elsewhere: PieceMap::new(16),
            granted: Vec::new(),
            upstream_link: None,
        }
    }

    #[test]
    fn without_a_last_answer_every_peer_is_whole() {
        let (answer, record) = compose(
            7,
            &[source(1, &[0]), source(2, &[1])],
            &no_roster(),
            None,
            leases(),
            Instant::now(),
        );
        assert_eq!(answer.base, 0);
        assert_eq!(answer.version, 7);
        assert!(
            answer
                .peers
                .iter()
                .all(|p| matches!(p.have, HaveUpdate::Whole(_)))
        );
        assert_eq!(answer.peers.len(), 2);
        assert!(answer.leased_elsewhere.is_some());
        assert_eq!(record.version, 7);
        assert!(!answer.changes_nothing());
    }

    fn no_roster() -> Arc<Roster> {
        Arc::default()
    }

    /// The roster of an office whose members are `sources`.
    fn roster_of(sources: &[Source]) -> Arc<Roster> {
        Arc::new(Roster::new(sources.iter().map(|s| (s.id, s.addr, s.rank))))
    }

    #[test]
    fn a_delta_lists_gains_newcomers_resets_movers_and_the_gone() {
        // Peers outside the roster (of the office above), and peers of the
        // asker's office, recorded as roster bits: the same deltas.
        a_delta_lists_gains_newcomers_resets_movers_and_the_gone_with(|_| no_roster());
        a_delta_lists_gains_newcomers_resets_movers_and_the_gone_with(roster_of);
    }

    fn a_delta_lists_gains_newcomers_resets_movers_and_the_gone_with(
        roster: fn(&[Source]) -> Arc<Roster>,
    ) {
        let now = Instant::now();
        let before = [
            source(1, &[0]),
            source(2, &[1]),
            source(3, &[2]),
            source(4, &[3]),
        ];
        let (_, last) = compose(5, &before, &roster(&before), None, leases(), now);
        let mut moved = source(3, &[2]);
        moved.rank = 0;
        let after = [
            source(1, &[0, 5, 6]),
            source(2, &[]),
            moved.clone(),
            source(9, &[4]),
        ];
        let changes = HashMap::from([
            (NodeId([1; 16]), HolderChange::Gained(vec![5, 6])),
            (NodeId([2; 16]), HolderChange::Reset),
            (NodeId([9; 16]), HolderChange::Reset),
        ]);
        let (answer, _) = compose(
            9,
            &after,
            &roster(&after),
            Some((&last, &changes)),
            leases(),
            now,
        );
        assert_eq!(answer.base, 5);
        let by_id = |n: u8| {
            answer
                .peers
                .iter()
                .find(|p| p.id == NodeId([n; 16]))
                .map(|p| &p.have)
        };
        assert_eq!(by_id(1), Some(&HaveUpdate::Gained(vec![5, 6])));
        assert_eq!(by_id(2), Some(&HaveUpdate::Whole(PieceMap::new(16))));
        assert_eq!(
            by_id(3),
            Some(&HaveUpdate::Gained(Vec::new())),
            "its rank moved"
        );
        assert_eq!(by_id(9), Some(&HaveUpdate::Whole(after[3].have.clone())));
        assert_eq!(answer.gone, vec![NodeId([4; 16])]);
        assert_eq!(answer.leased_elsewhere, None, "leases unchanged");
    }

    #[test]
    fn nothing_changed_is_an_empty_delta_and_a_lease_change_is_not() {
        let now = Instant::now();
        let peers = [source(1, &[0])];
        let roster = roster_of(&peers);
        let (_, last) = compose(5, &peers, &roster, None, leases(), now);
        let none = HashMap::new();
        let (answer, _) = compose(6, &peers, &roster, Some((&last, &none)), leases(), now);
        assert!(answer.changes_nothing());
        let mut granted = leases();
        granted.granted = vec![3];
        let (answer, _) = compose(6, &peers, &roster, Some((&last, &none)), granted, now);
        assert!(!answer.changes_nothing());
        assert!(answer.leased_elsewhere.is_some());
    }
}
