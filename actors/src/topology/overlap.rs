//! Finding two offices' blocks that clash, in O(n log n).
//!
//! Blocks of different offices may nest (the more specific one wins an
//! address) or be apart; they clash when they are the same block, or when
//! they cross (overlap with neither inside the other). Blocks of one office
//! may do anything. Comparing every pair took a minute for 130,000
//! subnets; this sweep takes the blocks in order of their first address:
//! a block `b` clashes with an earlier-starting block `o` of another office
//! exactly when `o` ends inside `b` (`b.first <= o.last < b.last`), and with
//! a block starting at the same address when the two are the same. The
//! blocks already passed are kept in a segment tree over their last
//! addresses that remembers, per range, blocks of up to two offices: one
//! query per block tells whether another office's block ends inside it.

use std::cmp::Ordering;

use super::block::AddressBlock;

/// A block's place on one line for every family: (family, address).
pub(super) type Point = (u8, u128);

pub(super) fn point_of(addr: std::net::IpAddr) -> Point {
    match addr {
        std::net::IpAddr::V4(a) => (4, u128::from(u32::from(a))),
        std::net::IpAddr::V6(a) => (6, u128::from(a)),
    }
}

/// Up to two blocks (their positions in the input) of different offices.
#[derive(Clone, Copy, Default)]
struct Two([Option<(usize, usize)>; 2]);

impl Two {
    /// Adds `(office, block)` unless an entry of that office is there or
    /// both places are taken.
    fn add(&mut self, entry: (usize, usize)) {
        for slot in &mut self.0 {
            match slot {
                Some((office, _)) if *office == entry.0 => return,
                None => {
                    *slot = Some(entry);
                    return;
                }
                Some(_) => {}
            }
        }
    }

    fn merged(mut self, other: Two) -> Two {
        for entry in other.0.into_iter().flatten() {
            self.add(entry);
        }
        self
    }

    /// A block of an office other than `office`, if there is one.
    fn other_than(&self, office: usize) -> Option<usize> {
        self.0
            .iter()
            .flatten()
            .find(|(o, _)| *o != office)
            .map(|(_, block)| *block)
    }
}

/// A segment tree over the sorted distinct last addresses.
struct Ends {
    keys: Vec<Point>,
    tree: Vec<Two>,
}

impl Ends {
    fn new(mut keys: Vec<Point>) -> Self {
        keys.sort_unstable();
        keys.dedup();
        let tree = vec![Two::default(); 2 * keys.len().next_power_of_two().max(1)];
        Ends { keys, tree }
    }

    fn leaves(&self) -> usize {
        self.tree.len() / 2
    }

    fn insert(&mut self, last: Point, entry: (usize, usize)) {
        let Ok(i) = self.keys.binary_search(&last) else {
            return;
        };
        let mut node = self.leaves() + i;
        self.tree[node].add(entry);
        while node > 1 {
            node /= 2;
            self.tree[node] = self.tree[2 * node].merged(self.tree[2 * node + 1]);
        }
    }

    /// What ends at a key in `[from, to)`.
    fn query(&self, from: Point, to: Point) -> Two {
        let lo = self.keys.partition_point(|k| *k < from);
        let hi = self.keys.partition_point(|k| *k < to);
        let (mut lo, mut hi) = (lo + self.leaves(), hi + self.leaves());
        let mut found = Two::default();
        while lo < hi {
            if lo % 2 == 1 {
                found = found.merged(self.tree[lo]);
                lo += 1;
            }
            if hi % 2 == 1 {
                hi -= 1;
                found = found.merged(self.tree[hi]);
            }
            lo /= 2;
            hi /= 2;
        }
        found
    }
}

/// Two blocks of different offices that clash, as positions in `blocks`
/// (each block with its office), if any.
pub fn find_clash(blocks: &[(AddressBlock, usize)]) -> Option<(usize, usize)> {
    let mut order: Vec<usize> = (0..blocks.len()).collect();
    let first = |i: usize| point_of(blocks[i].0.first());
    let last = |i: usize| point_of(blocks[i].0.last());
    order.sort_by(|&a, &b| match first(a).cmp(&first(b)) {
        Ordering::Equal => last(a).cmp(&last(b)),
        other => other,
    });
    let mut ends = Ends::new((0..blocks.len()).map(last).collect());
    let mut at = 0;
    while at < order.len() {
        // The blocks starting at the same address: checked against those
        // that started before, and among themselves, then added.
        let start = first(order[at]);
        let group_end = order[at..]
            .iter()
            .position(|&i| first(i) != start)
            .map_or(order.len(), |n| at + n);
        let group = &order[at..group_end];
        for (n, &b) in group.iter().enumerate() {
            let office = blocks[b].1;
            let inside = ends.query(start, last(b));
            if let Some(o) = inside.other_than(office) {
                return Some((o, b));
            }
            let same = group[..n]
                .iter()
                .find(|&&o| last(o) == last(b) && blocks[o].1 != office);
            if let Some(&o) = same {
                return Some((o, b));
            }
        }
        for &b in group {
            ends.insert(last(b), (blocks[b].1, b));
        }
        at = group_end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule, pair by pair.
    fn naive(blocks: &[(AddressBlock, usize)]) -> bool {
        blocks.iter().enumerate().any(|(n, (b, i))| {
            blocks[..n].iter().any(|(o, j)| {
                let clash = b == o || !(b.covers(o) || o.covers(b));
                i != j && b.overlaps(o) && clash
            })
        })
    }

    fn block(text: &str) -> AddressBlock {
        text.parse().unwrap()
    }

    #[test]
    fn nested_and_apart_pass_and_same_or_crossing_clash() {
        let ok = [
            (block("10.0.0.0/8"), 0),
            (block("10.1.0.0/16"), 1),
            (block("10.1.2.0/24"), 2),
            (block("10.1.2.0/24"), 2),
            (block("11.0.0.0/8"), 1),
            (block("fd00::/64"), 0),
            (block("10.1.2.0-10.1.3.255"), 2),
        ];
        assert_eq!(find_clash(&ok), None);
        let same = [(block("10.0.0.0/24"), 0), (block("10.0.0.0/24"), 1)];
        assert_eq!(find_clash(&same), Some((0, 1)));
        let crossing = [
            (block("10.0.0.10-10.0.0.20"), 0),
            (block("10.0.0.15-10.0.0.30"), 1),
        ];
        assert_eq!(find_clash(&crossing), Some((0, 1)));
    }

    #[test]
    fn the_sweep_agrees_with_the_pairwise_rule_on_random_sheets() {
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        for round in 0..2_000 {
            let count = 1 + next(12);
            let blocks: Vec<(AddressBlock, usize)> = (0..count)
                .map(|_| {
                    let a = u32::try_from(next(64)).unwrap();
                    let len = u32::try_from(next(24)).unwrap();
                    let first = std::net::Ipv4Addr::from(0x0a00_0000 + a);
                    let last = std::net::Ipv4Addr::from(0x0a00_0000 + a + len);
                    let block = block(&format!("{first}-{last}"));
                    (block, usize::try_from(next(3)).unwrap())
                })
                .collect();
            assert_eq!(
                find_clash(&blocks).is_some(),
                naive(&blocks),
                "round {round}: {blocks:?}"
            );
            if let Some((a, b)) = find_clash(&blocks) {
                let (x, y) = (&blocks[a], &blocks[b]);
                assert_ne!(x.1, y.1);
                assert!(
                    x.0.overlaps(&y.0) && (x.0 == y.0 || !(x.0.covers(&y.0) || y.0.covers(&x.0)))
                );
            }
        }
    }
}
