//! One published content in an office's registry: its record, who of the
//! office holds which of its pieces, its origin leases and its version, with the choice of peers
//! for an answer. A plain state machine, driven by [`super::Registry`].

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::sync::Arc;
use std::time::Instant;

use branchline_storage::{ContentRecord, NodeId, PieceMap};

use crate::server::holdings_log::HoldingsLog;

#[derive(Debug, Clone, Copy)]
pub(super) struct Lease {
    pub(super) holder: NodeId,
    pub(super) expires: Instant,
}

#[derive(Debug)]
pub(super) struct Content {
    pub(super) record: Arc<ContentRecord>,
    /// Never shared by peers; nobody's holdings of it are kept.
    pub(super) confidential: bool,
    pub(super) holders: BTreeMap<NodeId, PieceMap>,
    pub(super) leases: BTreeMap<u32, Lease>,
    pub(super) version: u64,
    pub(super) log: HoldingsLog,
}

impl Content {
    pub(super) fn new(record: Arc<ContentRecord>, confidential: bool) -> Self {
        Content {
            record,
            confidential,
            holders: BTreeMap::new(),
            leases: BTreeMap::new(),
            version: 1,
            log: HoldingsLog::default(),
        }
    }

    /// Sets what `id` holds, moving the version if that changed; returns
    /// how many pieces it gained, or `None` if that is what it held already.
    pub(super) fn put_holder(&mut self, id: NodeId, have: PieceMap) -> Option<u32> {
        let before = self.holders.get(&id);
        if before == Some(&have) {
            return None;
        }
        let gained = have
            .count()
            .saturating_sub(before.map_or(0, PieceMap::count));
        self.version += 1;
        self.log.record(self.version, id, before, Some(&have));
        self.holders.insert(id, have);
        Some(gained)
    }

    /// Forgets what `id` holds, moving the version; false if it held
    /// nothing.
    pub(super) fn remove_holder(&mut self, id: &NodeId) -> bool {
        let Some(before) = self.holders.remove(id) else {
            return false;
        };
        self.version += 1;
        self.log.record(self.version, *id, Some(&before), None);
        true
    }

    /// What the holders `keep` accepts hold between them.
    pub(super) fn held_among(&self, keep: impl Fn(&NodeId) -> bool) -> PieceMap {
        let mut held = PieceMap::new(self.record.manifest.piece_count());
        for (_, have) in self.holders.iter().filter(|(id, _)| keep(id)) {
            held.add_all_of(have);
        }
        held
    }

    /// At most `cap` holders other than `asker` (and accepted by `keep`) for
    /// its answer: first those that add pieces the chosen ones do not cover
    /// yet, so every piece someone holds stays reachable, then others to
    /// spread the load. The walk starts at the asker's id, so different
    /// askers are sent to different peers. One walk, `keep` asked once per
    /// holder, and no holder compared with the covered pieces once they
    /// are all covered (this was half of the server's time answering).
    pub(super) fn chosen_peers(
        &self,
        asker: &NodeId,
        cap: usize,
        keep: impl Fn(&NodeId) -> bool,
    ) -> Vec<(&NodeId, &PieceMap)> {
        let candidates: Vec<(&NodeId, &PieceMap)> = self
            .holders
            .range(asker..)
            .chain(self.holders.range(..asker))
            .filter(|(id, have)| *id != asker && have.holds_any() && keep(id))
            .collect();
        let mut covered = PieceMap::new(self.record.manifest.piece_count());
        let mut all_covered = false;
        let mut adds = vec![false; candidates.len()];
        let mut chosen: Vec<(&NodeId, &PieceMap)> = Vec::with_capacity(cap.min(candidates.len()));
        for (i, (id, have)) in candidates.iter().enumerate() {
            if chosen.len() == cap || all_covered {
                break;
            }
            if have.holds_any_missing_from(&covered) {
                covered.add_all_of(have);
                all_covered = covered.is_complete();
                adds[i] = true;
                chosen.push((id, have));
            }
        }
        let others = candidates
            .iter()
            .zip(&adds)
            .filter(|(_, adds)| !**adds)
            .map(|(candidate, _)| *candidate);
        let room = cap - chosen.len();
        chosen.extend(others.take(room));
        chosen
    }

    /// Leases to `lease.holder` each of `pieces` not leased yet, `most` at
    /// most; returns how many.
    pub(super) fn grant(
        &mut self,
        pieces: impl Iterator<Item = u32>,
        most: u32,
        lease: Lease,
    ) -> u32 {
        let mut granted = 0;
        for index in pieces {
            if granted >= most {
                break;
            }
            if let Entry::Vacant(free) = self.leases.entry(index) {
                free.insert(lease);
                granted += 1;
            }
        }
        granted
    }

    pub(super) fn expire_leases(&mut self, now: Instant) -> bool {
        let before = self.leases.len();
        self.leases.retain(|_, l| l.expires > now);
        before != self.leases.len()
    }
}
