//! What clients report about peers: one that stopped answering (counted
//! in the peer's office, which may be an office above the reporter's),
//! and one that sent bad bytes (banned from the reporter's office).

use std::time::Instant;

use branchline_storage::NodeId;

use super::Registry;
use crate::wire::BadPiece;

/// What a report that a peer stopped answering did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reported {
    /// The reporter is not registered here.
    UnknownReporter,
    /// The peer is a member here: the report counted.
    Counted,
    /// The peer is not a member here: the offices above may know it.
    NotHere,
}

impl Registry {
    /// `id` says `peer` stopped answering.
    pub fn report_unresponsive(&mut self, id: NodeId, peer: NodeId, now: Instant) -> Reported {
        if !self.heartbeat(&id, now) {
            return Reported::UnknownReporter;
        }
        if self.suspect(peer, id, now) {
            Reported::Counted
        } else {
            Reported::NotHere
        }
    }

    /// `reporter` (here or in an office below) says `peer` stopped
    /// answering. False if `peer` is not a member here.
    pub fn suspect(&mut self, peer: NodeId, reporter: NodeId, now: Instant) -> bool {
        if self.book.member(&peer).is_none() {
            return false;
        }
        if self.book.report_unresponsive(peer, reporter, now) {
            self.answers_change_for(&peer);
        }
        true
    }

    /// How many offices below take pieces from this one now: their
    /// clients' reports count too.
    pub fn set_takers_below(&mut self, offices: usize) {
        self.book.set_takers_below(offices);
    }

    /// Sources answers that list `peer` change (it is left out now): moves
    /// the version of every content it holds, which wakes the long-polls.
    fn answers_change_for(&mut self, peer: &NodeId) {
        for c in self.contents.values_mut() {
            if c.holders.contains_key(peer) {
                c.version += 1;
            }
        }
    }

    /// `id` banned `peer` for bad bytes: the office stops offering `peer`
    /// to its clients (its pieces no longer count as held here, so the
    /// origin may be leased for them). False if `id` is unknown.
    pub fn report_ban(
        &mut self,
        id: NodeId,
        peer: NodeId,
        evidence: Vec<BadPiece>,
        now: Instant,
    ) -> bool {
        if !self.heartbeat(&id, now) {
            return false;
        }
        let first = evidence
            .first()
            .map(|e| e.error.clone())
            .unwrap_or_default();
        if self.bans.insert(peer, (id, evidence)).is_none() {
            tracing::warn!(office = %self.book.name(), %peer, by = %id, evidence = %first, "peer banned in an office for bad bytes");
            // It may be a peer of the office above: every answer may change.
            for c in self.contents.values_mut() {
                c.version += 1;
            }
        }
        true
    }

    /// The peers this office's clients banned.
    pub fn banned(&self) -> Vec<NodeId> {
        self.bans.keys().copied().collect()
    }
}
