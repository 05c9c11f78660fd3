//! Finding the office of an address, and an office by its name, in
//! O(log n) and O(1), however many offices and blocks the topology has.
//!
//! An address belongs to the office of the most specific block that holds
//! it (the smallest; on a tie, the first in the sheet's order). The blocks
//! cut each address family into segments within which that answer cannot
//! change, so a sweep over the blocks' bounds (a set of the blocks open at
//! each bound, ordered by size) computes the answer of every segment once,
//! in O(n log n), and a lookup is a binary search over the segments.
//! Before this, each lookup walked every block: with a sheet at the caps
//! (100,000 blocks) registering 50 clients took over a second.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::OnceLock;

use super::Office;
use super::overlap::{Point, point_of};

/// The lookups of the first offices of a topology (those it was built
/// for; offices added since are the caller's to walk).
#[derive(Debug)]
pub(crate) struct Lookup {
    /// Office positions by name (the first, if two share one).
    by_name: HashMap<String, usize>,
    /// The top office's position.
    top: Option<usize>,
    /// Where each segment starts, in order, and the office of its
    /// addresses with the size of its block (none: no block holds them).
    segments: Vec<(Point, Option<(usize, u128)>)>,
    /// How many offices it was built for.
    built_for: usize,
}

/// One block on its family's line.
struct Span {
    first: Point,
    /// The first address after the block: past a family's last address,
    /// the first point of the next family number (4 becomes 5, 6 becomes
    /// 7), where no block starts.
    after: Point,
    size: u128,
    office: usize,
}

impl Lookup {
    pub(crate) fn build(offices: &[Office]) -> Self {
        let mut by_name = HashMap::with_capacity(offices.len());
        for (i, office) in offices.iter().enumerate() {
            by_name.entry(office.name.clone()).or_insert(i);
        }
        let top = offices.iter().position(|o| o.parent.is_none());
        let spans: Vec<Span> = offices
            .iter()
            .enumerate()
            .flat_map(|(i, o)| o.blocks.iter().map(move |b| (i, b)))
            .map(|(office, b)| {
                let (first, last) = (point_of(b.first()), point_of(b.last()));
                let family_end = if first.0 == 4 {
                    u128::from(u32::MAX)
                } else {
                    u128::MAX
                };
                Span {
                    first,
                    after: if last.1 < family_end {
                        (last.0, last.1 + 1)
                    } else {
                        (last.0 + 1, 0)
                    },
                    size: b.span(),
                    office,
                }
            })
            .collect();
        Lookup {
            by_name,
            top,
            segments: segments(&spans),
            built_for: offices.len(),
        }
    }

    /// The position of the office of `addr` and the size of its block, if
    /// a block holds it.
    pub(crate) fn office_of(&self, addr: IpAddr) -> Option<(usize, u128)> {
        let point = point_of(addr);
        let after = self.segments.partition_point(|(start, _)| *start <= point);
        let (start, office) = self.segments.get(after.checked_sub(1)?)?;
        (start.0 == point.0).then_some(*office).flatten()
    }

    /// How many offices it was built for: those after are not in it.
    pub(crate) fn built_for(&self) -> usize {
        self.built_for
    }

    /// The position of the office named `name`.
    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The top office's position.
    pub(crate) fn top(&self) -> Option<usize> {
        self.top
    }
}

/// The segments of every family: at each bound, the blocks that end there
/// close and those that start there open, and the smallest open one (the
/// first given, on a tie) names the segment's office.
fn segments(spans: &[Span]) -> Vec<(Point, Option<(usize, u128)>)> {
    let mut opening: Vec<usize> = (0..spans.len()).collect();
    opening.sort_by_key(|&i| spans[i].first);
    let mut closing: Vec<usize> = (0..spans.len()).collect();
    closing.sort_by_key(|&i| spans[i].after);
    let mut bounds: Vec<Point> = spans.iter().flat_map(|s| [s.first, s.after]).collect();
    bounds.sort_unstable();
    bounds.dedup();
    let (mut next_open, mut next_close) = (0, 0);
    let mut open: BTreeSet<(u128, usize)> = BTreeSet::new();
    let mut out: Vec<(Point, Option<(usize, u128)>)> = Vec::new();
    for bound in bounds {
        while let Some(&i) = closing.get(next_close)
            && spans[i].after == bound
        {
            open.remove(&(spans[i].size, i));
            next_close += 1;
        }
        while let Some(&i) = opening.get(next_open)
            && spans[i].first == bound
        {
            open.insert((spans[i].size, i));
            next_open += 1;
        }
        let office = open.first().map(|&(size, i)| (spans[i].office, size));
        if out.last().is_none_or(|(_, last)| *last != office) {
            out.push((bound, office));
        }
    }
    out
}

/// The lookups, built when first needed (after an import, on the blocking
/// pool, before the topology is swapped in) and dropped when the offices
/// change. It is not part of what a topology is: two topologies with the
/// same offices are equal whatever their lookups, and it is not stored.
#[derive(Clone, Debug, Default)]
pub(crate) struct LazyLookup(OnceLock<std::sync::Arc<Lookup>>);

impl LazyLookup {
    pub(crate) fn get(&self, offices: &[Office]) -> &Lookup {
        self.0
            .get_or_init(|| std::sync::Arc::new(Lookup::build(offices)))
    }
}

impl PartialEq for LazyLookup {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for LazyLookup {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::AddressBlock;

    fn office(name: &str, blocks: &[&str]) -> Office {
        let mut office = Office::new(name, Some("top"));
        office.blocks = blocks.iter().map(|b| b.parse().unwrap()).collect();
        office
    }

    /// The rule as it was written before: every block, the smallest wins,
    /// the first on a tie.
    fn by_walking(offices: &[Office], addr: IpAddr) -> Option<usize> {
        offices
            .iter()
            .enumerate()
            .flat_map(|(i, o)| o.blocks.iter().map(move |b| (b, i)))
            .filter(|(b, _)| b.contains(addr))
            .min_by_key(|(b, _)| b.span())
            .map(|(_, i)| i)
    }

    #[test]
    fn the_most_specific_block_wins_and_the_first_on_a_tie() {
        let offices = vec![
            Office::new("top", None),
            office("wide", &["10.0.0.0/8", "fd00::/8"]),
            office("branch", &["10.1.0.0/16", "10.1.2.10-10.1.2.20"]),
            office("twin", &["10.1.0.0/16"]),
            office("edge", &["255.255.255.0/24", "::/0"]),
        ];
        let lookup = Lookup::build(&offices);
        for (addr, want) in [
            ("10.9.9.9", Some(1)),
            ("10.1.2.3", Some(2)),
            ("10.1.2.15", Some(2)),
            ("10.1.2.21", Some(2)),
            ("11.0.0.0", None),
            ("9.255.255.255", None),
            ("255.255.255.255", Some(4)),
            ("fd00::1", Some(1)),
            ("fe80::1", Some(4)),
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(4)),
        ] {
            let addr: IpAddr = addr.parse().unwrap();
            assert_eq!(lookup.office_of(addr).map(|(i, _)| i), want, "{addr}");
            assert_eq!(by_walking(&offices, addr), want, "{addr}");
        }
        assert_eq!(lookup.position("twin"), Some(3));
        assert_eq!(lookup.top(), Some(0));
    }

    #[test]
    fn random_sheets_agree_with_walking_every_block() {
        let mut seed = 20_261_205u64;
        let mut next = move |n: u32| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            u32::try_from(seed >> 33).unwrap() % n
        };
        for _ in 0..300 {
            let mut offices = vec![Office::new("top", None)];
            for o in 0..(1 + next(8)) {
                let blocks: Vec<AddressBlock> = (0..(1 + next(4)))
                    .map(|_| {
                        let a = 0x0a00_0000 + next(1 << 12);
                        if next(2) == 0 {
                            let prefix = 20 + next(13);
                            let base = a & !((1u32 << (32 - prefix)) - 1);
                            format!("{}/{prefix}", std::net::Ipv4Addr::from(base))
                        } else {
                            let b = a + next(300);
                            format!(
                                "{}-{}",
                                std::net::Ipv4Addr::from(a),
                                std::net::Ipv4Addr::from(b)
                            )
                        }
                        .parse()
                        .unwrap()
                    })
                    .collect();
                let mut office = Office::new(&format!("o{o}"), Some("top"));
                office.blocks = blocks;
                offices.push(office);
            }
            let lookup = Lookup::build(&offices);
            for _ in 0..200 {
                let addr = IpAddr::from(std::net::Ipv4Addr::from(
                    0x0a00_0000 - 16 + next((1 << 12) + 400),
                ));
                assert_eq!(
                    lookup.office_of(addr).map(|(i, _)| i),
                    by_walking(&offices, addr),
                    "{addr}"
                );
            }
        }
    }
}
