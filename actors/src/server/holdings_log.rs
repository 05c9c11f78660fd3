//! What changed in one content's holdings, version by version, so that a
//! sources answer can tell a client only what changed since the answer it
//! last saw (the pieces each peer gained) instead of every peer's whole
//! have-map again.
//!
//! The log is bounded: it keeps the newest [`LOG_PIECES`] gained pieces.
//! A version older than what it still covers gets `None`, and the asker is
//! sent a complete answer instead.

use std::collections::{HashMap, VecDeque};

use branchline_storage::{NodeId, PieceMap};

/// Gained pieces the log keeps per content (each costs about 4 bytes plus
/// a share of its entry).
pub const LOG_PIECES: usize = 65_536;

/// What happened to one holder between two versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HolderChange {
    /// It gained these pieces (in the order they were reported).
    Gained(Vec<u32>),
    /// It lost pieces, left, or is new: only its whole map says what it
    /// holds.
    Reset,
}

#[derive(Debug)]
struct Entry {
    version: u64,
    holder: NodeId,
    change: HolderChange,
}

/// The log of one content.
#[derive(Debug)]
pub struct HoldingsLog {
    entries: VecDeque<Entry>,
    pieces: usize,
    cap: usize,
    /// Versions up to this one may have lost entries to trimming.
    floor: u64,
}

impl Default for HoldingsLog {
    fn default() -> Self {
        HoldingsLog::with_cap(LOG_PIECES)
    }
}

impl HoldingsLog {
    /// A log that keeps the newest `cap` gained pieces.
    pub fn with_cap(cap: usize) -> Self {
        HoldingsLog {
            entries: VecDeque::new(),
            pieces: 0,
            cap,
            floor: 0,
        }
    }

    /// Records that at `version` the map of `holder` went from `before` to
    /// `after` (`None`: it held nothing, or is gone).
    pub fn record(
        &mut self,
        version: u64,
        holder: NodeId,
        before: Option<&PieceMap>,
        after: Option<&PieceMap>,
    ) {
        let change = match (before, after) {
            (Some(before), Some(after))
                if before.len() == after.len() && before.iter_set().all(|i| after.get(i)) =>
            {
                HolderChange::Gained(after.iter_set().filter(|&i| !before.get(i)).collect())
            }
            _ => HolderChange::Reset,
        };
        if let HolderChange::Gained(pieces) = &change {
            if pieces.is_empty() {
                return;
            }
            self.pieces += pieces.len();
        }
        self.entries.push_back(Entry {
            version,
            holder,
            change,
        });
        while self.pieces > self.cap {
            let Some(old) = self.entries.pop_front() else {
                break;
            };
            if let HolderChange::Gained(pieces) = &old.change {
                self.pieces -= pieces.len();
            }
            self.floor = self.floor.max(old.version);
        }
    }

    /// Every holder's change after version `since`, or `None` if the log no
    /// longer reaches back that far.
    pub fn since(&self, since: u64) -> Option<HashMap<NodeId, HolderChange>> {
        if since < self.floor {
            return None;
        }
        let first = self.entries.partition_point(|e| e.version <= since);
        let mut changes: HashMap<NodeId, HolderChange> = HashMap::new();
        for entry in self.entries.range(first..) {
            match (changes.get_mut(&entry.holder), &entry.change) {
                (Some(HolderChange::Reset), _) => {}
                (Some(HolderChange::Gained(known)), HolderChange::Gained(more)) => {
                    known.extend_from_slice(more);
                }
                _ => {
                    changes.insert(entry.holder, entry.change.clone());
                }
            }
        }
        Some(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(len: u32, set: &[u32]) -> PieceMap {
        let mut m = PieceMap::new(len);
        for &i in set {
            m.set(i);
        }
        m
    }

    #[test]
    fn gains_add_up_per_holder_after_the_version_asked() {
        let (a, b) = (NodeId([1; 16]), NodeId([2; 16]));
        let mut log = HoldingsLog::default();
        log.record(2, a, None, Some(&map(8, &[0])));
        log.record(3, a, Some(&map(8, &[0])), Some(&map(8, &[0, 1])));
        log.record(4, b, Some(&map(8, &[5])), Some(&map(8, &[5, 6, 7])));
        log.record(5, a, Some(&map(8, &[0, 1])), Some(&map(8, &[0, 1, 3])));
        let changes = log.since(2).unwrap();
        assert_eq!(changes[&a], HolderChange::Gained(vec![1, 3]));
        assert_eq!(changes[&b], HolderChange::Gained(vec![6, 7]));
        assert_eq!(log.since(1).unwrap()[&a], HolderChange::Reset, "new holder");
        assert!(log.since(5).unwrap().is_empty());
    }

    #[test]
    fn losing_a_piece_or_leaving_resets_and_a_reset_stays_a_reset() {
        let a = NodeId([1; 16]);
        let mut log = HoldingsLog::default();
        log.record(2, a, Some(&map(8, &[0, 1])), Some(&map(8, &[1])));
        log.record(3, a, Some(&map(8, &[1])), Some(&map(8, &[1, 2])));
        assert_eq!(log.since(1).unwrap()[&a], HolderChange::Reset);
        assert_eq!(log.since(2).unwrap()[&a], HolderChange::Gained(vec![2]));
        log.record(4, a, Some(&map(8, &[1, 2])), None);
        assert_eq!(log.since(3).unwrap()[&a], HolderChange::Reset);
    }

    #[test]
    fn an_unchanged_map_is_not_an_entry() {
        let a = NodeId([1; 16]);
        let mut log = HoldingsLog::default();
        log.record(2, a, Some(&map(8, &[1])), Some(&map(8, &[1])));
        assert!(log.since(0).unwrap().is_empty());
    }

    #[test]
    fn a_version_older_than_the_trimmed_log_gets_none() {
        let a = NodeId([1; 16]);
        let mut log = HoldingsLog::with_cap(4);
        let mut have = PieceMap::new(8);
        for piece in 0..6 {
            let before = have.clone();
            have.set(piece);
            log.record(u64::from(piece) + 2, a, Some(&before), Some(&have));
        }
        // Versions 2 to 7 gained pieces 0 to 5; the first two were trimmed.
        assert!(log.since(1).is_none());
        assert!(log.since(2).is_none());
        assert!(log.since(3).is_some(), "every entry after 3 is kept");
        assert_eq!(log.since(5).unwrap()[&a], HolderChange::Gained(vec![4, 5]));
    }
}
