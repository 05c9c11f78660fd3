//! The office topology: offices in a tree, each made of subnets or address
//! ranges, with a type (Default, VPN, WiFi) that says how its clients
//! share. A plain model with no I/O: it validates itself, resolves a
//! client's office by the most specific block holding its address, and
//! makes automatic offices for addresses no office claims.
//!
//! Blocks of different offices may nest (a /24 inside a /16: the /24 wins,
//! as longest-prefix match), but may not be identical or cross each other
//! partly (possible with ranges): then an address would have no single
//! most specific office.
//!
//! - [`block`]: subnets and ranges.
//! - [`overlap`]: finding clashing blocks of two offices in O(n log n).
//! - [`network`]: private ranges, and the clients off the corporate network.
//! - [`spreadsheet`]: the CSV an administrator edits, with its caps.

pub mod block;
pub mod diff;
pub mod link;
mod lookup;
pub mod network;
pub mod overlap;
pub mod spreadsheet;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use block::{AddressBlock, BadBlock};
pub use link::{BusyConfig, LinkBelow, LinkSettings};

/// Most RVPs an office may elect.
pub const MAX_RVP_COUNT: u8 = 16;
/// Name of the top office when no topology was imported.
pub const DEFAULT_TOP: &str = "top";

/// How an office's clients share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum OfficeKind {
    /// A wired LAN: clients serve peers and broadcast discovery requests.
    Default,
    /// Clients on VPN: they download and broadcast, but never serve.
    Vpn,
    /// Clients on WiFi: they serve, but never broadcast.
    Wifi,
}

impl OfficeKind {
    /// Whether clients of this kind serve pieces to peers.
    pub fn serves(self) -> bool {
        self != OfficeKind::Vpn
    }

    /// Whether clients of this kind broadcast discovery requests.
    pub fn broadcasts(self) -> bool {
        self != OfficeKind::Wifi
    }
}

impl FromStr for OfficeKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "default" => Ok(OfficeKind::Default),
            "vpn" => Ok(OfficeKind::Vpn),
            "wifi" => Ok(OfficeKind::Wifi),
            _ => Err(format!(
                "unknown office type `{}` (expected Default, VPN or WiFi)",
                s.trim()
            )),
        }
    }
}

impl fmt::Display for OfficeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OfficeKind::Default => "Default",
            OfficeKind::Vpn => "VPN",
            OfficeKind::Wifi => "WiFi",
        })
    }
}

/// One office.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Office {
    /// Its unique name.
    pub name: String,
    /// Its parent; `None` for the top office.
    pub parent: Option<String>,
    /// How its clients share.
    pub kind: OfficeKind,
    /// The subnets and ranges it is made of.
    pub blocks: Vec<AddressBlock>,
    /// Names of clients preferred as its RVPs.
    pub preferred: Vec<String>,
    /// How many RVPs it elects (1 to [`MAX_RVP_COUNT`]).
    pub rvp_count: u8,
    /// Whether its RVPs may fetch from the origin directly (a branch with
    /// its own internet breakout) instead of through the parent office.
    pub origin_direct: bool,
    /// Cap on the background link from its parent, in Mbit/s.
    pub wan_rate_mbit: Option<u32>,
    /// Made by the server for a client no office claimed.
    pub automatic: bool,
    /// The background link from its parent. Not in the stored form of the
    /// topology, which predates it: kept beside it (see
    /// [`Topology::links`]).
    #[serde(skip)]
    pub link: LinkSettings,
}

impl Office {
    /// Whether it is an automatic office made for addresses on no private
    /// network: its clients are off the corporate network, and are given
    /// only the CDN origins of a content.
    pub fn is_off_network(&self) -> bool {
        self.automatic
            && !self.blocks.is_empty()
            && self.blocks.iter().all(|b| !network::is_private(b.first()))
    }

    /// An office with defaults: Default type, one RVP, no blocks.
    pub fn new(name: &str, parent: Option<&str>) -> Self {
        Office {
            name: name.to_owned(),
            parent: parent.map(str::to_owned),
            kind: OfficeKind::Default,
            blocks: Vec::new(),
            preferred: Vec::new(),
            rvp_count: 1,
            origin_direct: false,
            wan_rate_mbit: None,
            automatic: false,
            link: LinkSettings::default(),
        }
    }
}

/// Why a set of offices is not a topology. Each names the office (by its
/// position in the list given) it found wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    /// No offices at all.
    #[error("no offices: a topology needs a top office (one with no parent)")]
    Empty,
    /// An office with an empty name.
    #[error("an office needs a name")]
    NoName,
    /// Two offices with one name.
    #[error("office `{0}` is listed twice")]
    Duplicate(String),
    /// A parent that is not an office.
    #[error("office `{office}` has parent `{parent}`, which is not an office")]
    UnknownParent {
        /// The office.
        office: String,
        /// Its parent.
        parent: String,
    },
    /// An office that is its own ancestor.
    #[error("offices form a cycle: {0}")]
    Cycle(String),
    /// A second office without a parent.
    #[error("office `{second}` has no parent, but `{first}` is already the top office")]
    TwoTops {
        /// The first top office.
        first: String,
        /// This one.
        second: String,
    },
    /// No office without a parent.
    #[error("no top office: exactly one office must have an empty parent")]
    NoTop,
    /// A block claimed twice, or two blocks crossing.
    #[error("{block} of office `{office}` overlaps {other} of office `{other_office}`")]
    Overlap {
        /// The office.
        office: String,
        /// Its block.
        block: String,
        /// The other office.
        other_office: String,
        /// Its block.
        other: String,
    },
    /// An RVP count out of range.
    #[error("office `{0}` elects {1} RVPs; 1 to {MAX_RVP_COUNT} are allowed")]
    RvpCount(String, u8),
}

/// Automatic offices added since the lookup was built that an address
/// lookup walks, before the lookup is built again (O(n log n)): each new
/// /24 of an unknown address makes one, and rebuilding at each would cost
/// a sheet at the caps tens of milliseconds per new client.
const MAX_WALKED_OFFICES: usize = 64;

/// A validated topology.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    /// The offices, in the order given (the top office need not be first).
    offices: Vec<Office>,
    /// Offices by address and by name, made from `offices` when first
    /// needed; reset wherever `offices` changes.
    #[serde(skip)]
    lookup: lookup::LazyLookup,
}

impl Default for Topology {
    /// One top office with no blocks: every client lands in an automatic
    /// office of its /24 under it.
    fn default() -> Self {
        Topology {
            offices: vec![Office::new(DEFAULT_TOP, None)],
            lookup: lookup::LazyLookup::default(),
        }
    }
}

impl Topology {
    /// Validates `offices`. On error, also returns the position of the
    /// office found wrong.
    pub fn new(offices: Vec<Office>) -> Result<Self, (usize, TopologyError)> {
        if offices.is_empty() {
            return Err((0, TopologyError::Empty));
        }
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut top: Option<usize> = None;
        for (i, office) in offices.iter().enumerate() {
            if office.name.trim().is_empty() {
                return Err((i, TopologyError::NoName));
            }
            if index.insert(&office.name, i).is_some() {
                return Err((i, TopologyError::Duplicate(office.name.clone())));
            }
            if !(1..=MAX_RVP_COUNT).contains(&office.rvp_count) {
                return Err((
                    i,
                    TopologyError::RvpCount(office.name.clone(), office.rvp_count),
                ));
            }
            if office.parent.is_none() {
                if let Some(first) = top {
                    return Err((
                        i,
                        TopologyError::TwoTops {
                            first: offices[first].name.clone(),
                            second: office.name.clone(),
                        },
                    ));
                }
                top = Some(i);
            }
        }
        for (i, office) in offices.iter().enumerate() {
            if let Some(parent) = &office.parent
                && !index.contains_key(parent.as_str())
            {
                return Err((
                    i,
                    TopologyError::UnknownParent {
                        office: office.name.clone(),
                        parent: parent.clone(),
                    },
                ));
            }
        }
        for (i, office) in offices.iter().enumerate() {
            let mut path = vec![office.name.as_str()];
            let mut at = office;
            while let Some(parent) = &at.parent {
                path.push(parent);
                if parent == &office.name {
                    return Err((i, TopologyError::Cycle(path.join(" -> "))));
                }
                if path.len() > offices.len() {
                    break; // a cycle above this office; reported at its own row
                }
                at = &offices[index[parent.as_str()]];
            }
        }
        if top.is_none() {
            return Err((0, TopologyError::NoTop));
        }
        Self::check_blocks(&offices)?;
        Ok(Topology {
            offices,
            lookup: lookup::LazyLookup::default(),
        })
    }

    /// Refuses blocks claimed by two offices, or crossing partly
    /// ([`overlap::find_clash`]); the error names the later office's row.
    fn check_blocks(offices: &[Office]) -> Result<(), (usize, TopologyError)> {
        let all: Vec<(AddressBlock, usize)> = offices
            .iter()
            .enumerate()
            .flat_map(|(i, o)| o.blocks.iter().map(move |b| (*b, i)))
            .collect();
        let Some((a, b)) = overlap::find_clash(&all) else {
            return Ok(());
        };
        let ((ab, i), (bb, j)) = (all[a], all[b]);
        let (later, earlier, lb, eb) = if i > j {
            (i, j, ab, bb)
        } else {
            (j, i, bb, ab)
        };
        Err((
            later,
            TopologyError::Overlap {
                office: offices[later].name.clone(),
                block: lb.to_string(),
                other_office: offices[earlier].name.clone(),
                other: eb.to_string(),
            },
        ))
    }

    /// The link settings of every office that sets any, by office name:
    /// stored beside the topology, whose stored form has no place for them.
    pub fn links(&self) -> Vec<(String, LinkSettings)> {
        self.offices
            .iter()
            .filter(|o| !o.link.is_default())
            .map(|o| (o.name.clone(), o.link))
            .collect()
    }

    /// What the clients of `office` need to serve the offices below it:
    /// every office below with its blocks and link settings, if any of
    /// them sets the sending side's (else nothing, and the node's own
    /// settings apply to every peer).
    pub fn links_below(&self, office: &str) -> Vec<LinkBelow> {
        let below: Vec<&Office> = self
            .offices
            .iter()
            .filter(|o| {
                o.name != office && self.path_to_top(&o.name).iter().any(|p| p.name == office)
            })
            .collect();
        if !below.iter().any(|o| o.link.sets_sender()) {
            return Vec::new();
        }
        below
            .into_iter()
            .map(|o| LinkBelow {
                blocks: o.blocks.clone(),
                settings: o.link,
            })
            .collect()
    }

    /// Puts back link settings kept by [`Topology::links`]; names of no
    /// office are skipped.
    pub fn set_links(&mut self, links: Vec<(String, LinkSettings)>) {
        for (name, link) in links {
            if let Some(i) = self.position_of(&name) {
                self.offices[i].link = link;
            }
        }
    }

    /// The offices, in their order.
    pub fn offices(&self) -> &[Office] {
        &self.offices
    }

    /// An office by name.
    pub fn office(&self, name: &str) -> Option<&Office> {
        self.position_of(name).map(|i| &self.offices[i])
    }

    /// The position of the office named `name`: from the lookup, or among
    /// the (few) offices added since it was built.
    fn position_of(&self, name: &str) -> Option<usize> {
        let lookup = self.lookup();
        lookup.position(name).or_else(|| {
            let from = lookup.built_for();
            self.offices[from..]
                .iter()
                .position(|o| o.name == name)
                .map(|k| from + k)
        })
    }

    fn lookup(&self) -> &lookup::Lookup {
        self.lookup.get(&self.offices)
    }

    /// Makes the lookups of offices by address and by name now, so that
    /// the first lookup does not pay for them (an import makes them on the
    /// blocking pool, before the registry takes the topology).
    pub fn prepare_lookups(&self) {
        self.lookup();
    }

    /// The top office.
    pub fn top(&self) -> &Office {
        let top = self
            .lookup()
            .top()
            .expect("a validated topology has a top office");
        &self.offices[top]
    }

    /// The office whose most specific block holds `addr`, if any.
    pub fn resolve(&self, addr: IpAddr) -> Option<&Office> {
        let lookup = self.lookup();
        let mut best = lookup.office_of(addr);
        // Offices added since the lookup was built (automatic ones) come
        // after every other, so they win only with a smaller block.
        for (i, office) in self.offices.iter().enumerate().skip(lookup.built_for()) {
            for block in office.blocks.iter().filter(|b| b.contains(addr)) {
                if best.is_none_or(|(_, size)| block.span() < size) {
                    best = Some((i, block.span()));
                }
            }
        }
        best.map(|(i, _)| &self.offices[i])
    }

    /// The office of `addr`, making an automatic office of its /24 (or
    /// /64) under the top office if no office claims it. True if it made
    /// one. An address on no private network gets an office off the
    /// corporate network (`offnet-…`, see [`Office::is_off_network`]).
    pub fn resolve_or_add(&mut self, addr: IpAddr) -> (&Office, bool) {
        if let Some(i) = self.resolve(addr).map(|o| self.position(&o.name)) {
            return (&self.offices[i], false);
        }
        let block = AddressBlock::around(addr);
        let off_network = !network::is_private(addr);
        let base = if off_network {
            format!("offnet-{block}")
        } else {
            format!("auto-{block}")
        };
        let mut name = base.clone();
        for n in 2.. {
            if self.position_of(&name).is_none() {
                break;
            }
            name = format!("{base}-{n}");
        }
        let mut office = Office::new(&name, Some(&self.top().name.clone()));
        office.blocks.push(block);
        office.automatic = true;
        if off_network {
            // Its clients cannot reach the offices' peers nor be reached:
            // none serves, and each takes the origin (a CDN) directly.
            office.kind = OfficeKind::Vpn;
            office.origin_direct = true;
        }
        self.offices.push(office);
        // Walked until there are enough of them to build the lookup again.
        if self.offices.len() - self.lookup().built_for() > MAX_WALKED_OFFICES {
            self.lookup = lookup::LazyLookup::default();
        }
        (self.offices.last().expect("just pushed"), true)
    }

    fn position(&self, name: &str) -> usize {
        self.position_of(name)
            .expect("the office is in the topology")
    }

    /// The path from `office` up to the top, `office` first.
    pub fn path_to_top(&self, office: &str) -> Vec<&Office> {
        let mut path = Vec::new();
        let mut at = self.office(office);
        while let Some(o) = at {
            path.push(o);
            at = o.parent.as_deref().and_then(|p| self.office(p));
        }
        path
    }

    /// The offices top down, each followed by its children (depth first,
    /// children in topology order).
    pub fn top_down(&self) -> impl Iterator<Item = &Office> {
        let children = self.children();
        let mut stack = vec![self.top()];
        std::iter::from_fn(move || {
            let office = stack.pop()?;
            if let Some(kids) = children.get(office.name.as_str()) {
                stack.extend(kids.iter().rev());
            }
            Some(office)
        })
    }

    /// Each office's children, in topology order.
    pub fn children(&self) -> BTreeMap<&str, Vec<&Office>> {
        let mut children: BTreeMap<&str, Vec<&Office>> = BTreeMap::new();
        for office in &self.offices {
            if let Some(parent) = &office.parent {
                children.entry(parent).or_default().push(office);
            }
        }
        children
    }
}

#[cfg(test)]
mod tests;
