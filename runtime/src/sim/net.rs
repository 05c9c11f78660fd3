//! The simulated network: which office each node is in, each office's
//! link from its parent (queued, counted), the LAN inside an office, the
//! link from the origin to the top office, and which nodes are down. A
//! piece between two nodes crosses the links of every office between them
//! in the tree; a piece from the origin crosses the origin's link and
//! every office link down to the asker's office. Losses are drawn from a
//! seeded generator, so a run is the same every time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Addr;
use branchline_actors::client::counters::Counters;
use branchline_actors::client::discovery::same_subnet;
use branchline_actors::client::store::Store;
use branchline_storage::NodeId;
use tokio::time::Instant;

use super::link::{Link, Queue};
use crate::link_status::LinkStatus;
use crate::sim::SimError;

/// One office of the simulated network.
#[derive(Debug)]
struct Place {
    parent: Option<String>,
    /// The link from its parent (none for the top office).
    uplink: Queue,
    lan: Link,
}

/// A node of the simulated network: its office and its parts.
struct Node {
    office: String,
    parts: NodeParts,
}

/// A node's parts the network needs: who it is, what it serves from, what
/// it counts (a piece found rotten on its disk, as on a real node), and
/// what its server link knows (its office type).
#[derive(Clone)]
pub struct NodeParts {
    /// Its id.
    pub id: NodeId,
    /// Its store.
    pub store: Addr<Store>,
    /// Its counters.
    pub counters: Arc<Counters>,
    /// What its server link knows.
    pub link: Arc<LinkStatus>,
}

#[derive(Default)]
struct Net {
    offices: BTreeMap<String, Place>,
    nodes: HashMap<IpAddr, Node>,
    down: HashSet<IpAddr>,
    origin: Option<Queue>,
    /// The packages the origin serves, by URL.
    packages: HashMap<String, Arc<Vec<u8>>>,
    /// Bytes the origin sent, by URL.
    origin_bytes: HashMap<String, u64>,
    /// Bytes each node served to peers.
    served: HashMap<IpAddr, u64>,
    seed: u64,
}

/// The network, shared by every simulated actor (cloning shares it).
#[derive(Clone, Default)]
pub struct SimNet(Arc<Mutex<Net>>);

impl SimNet {
    /// A network whose losses are drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        let net = SimNet::default();
        net.lock().seed = seed.max(1);
        net
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Net> {
        branchline_actors::lock_unpoisoned(&self.0)
    }

    /// Adds an office under `parent`, linked to it by `uplink`, with
    /// `lan` inside it.
    pub fn add_office(&self, name: &str, parent: Option<&str>, uplink: Link, lan: Link) {
        self.lock().offices.insert(
            name.to_owned(),
            Place {
                parent: parent.map(str::to_owned),
                uplink: Queue::new(uplink),
                lan,
            },
        );
    }

    /// The link from the origin to the top office.
    pub fn set_origin(&self, link: Link) {
        self.lock().origin = Some(Queue::new(link));
    }

    /// The origin serves `bytes` at `url`.
    pub fn serve_at_origin(&self, url: &str, bytes: Arc<Vec<u8>>) {
        self.lock().packages.insert(url.to_owned(), bytes);
    }

    /// A node at `addr` in `office`, whose pieces its `store` serves.
    pub fn add_node(&self, addr: IpAddr, office: &str, parts: NodeParts) {
        let node = Node {
            office: office.to_owned(),
            parts,
        };
        self.lock().nodes.insert(addr, node);
    }

    /// The node at `addr` is cut off (`down`) or back.
    pub fn set_down(&self, addr: IpAddr, down: bool) {
        let mut net = self.lock();
        if down {
            net.down.insert(addr);
        } else {
            net.down.remove(&addr);
        }
    }

    /// Whether the node at `addr` is cut off.
    pub fn is_down(&self, addr: IpAddr) -> bool {
        self.lock().down.contains(&addr)
    }

    /// The nodes up on the subnet of `addr` (its /24, as a real broadcast
    /// reaches), `addr` itself excepted; none if `addr` is down.
    pub fn on_subnet(&self, addr: IpAddr) -> Vec<(IpAddr, NodeParts)> {
        let net = self.lock();
        if net.down.contains(&addr) {
            return Vec::new();
        }
        net.nodes
            .iter()
            .filter(|&(&at, _)| at != addr && same_subnet(addr, at) && !net.down.contains(&at))
            .map(|(&at, node)| (at, node.parts.clone()))
            .collect()
    }

    /// What the node at `addr` serves from, if it is up.
    pub fn holder(&self, addr: IpAddr) -> Result<NodeParts, SimError> {
        let net = self.lock();
        if net.down.contains(&addr) {
            return Err(SimError::Down(addr));
        }
        let node = net.nodes.get(&addr).ok_or(SimError::NoNode(addr))?;
        Ok(node.parts.clone())
    }

    /// Bytes carried so far by the link into `office`.
    pub fn link_bytes(&self, office: &str) -> u64 {
        self.lock()
            .offices
            .get(office)
            .map_or(0, |p| p.uplink.carried())
    }

    /// Bytes the node at `addr` served to peers so far.
    pub fn served_by(&self, addr: IpAddr) -> u64 {
        self.lock().served.get(&addr).copied().unwrap_or(0)
    }

    /// Bytes the origin sent so far.
    pub fn origin_bytes(&self) -> u64 {
        self.lock().origin_bytes.values().sum()
    }

    /// Bytes the origin sent so far from `url`.
    pub fn origin_bytes_at(&self, url: &str) -> u64 {
        self.lock().origin_bytes.get(url).copied().unwrap_or(0)
    }

    /// A package's bytes `offset..offset + len` at `url`.
    pub fn origin_range(&self, url: &str, offset: u64, len: u64) -> Result<Vec<u8>, SimError> {
        let net = self.lock();
        let package = net
            .packages
            .get(url)
            .ok_or_else(|| SimError::NoOrigin(url.to_owned()))?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = usize::try_from(offset.saturating_add(len)).unwrap_or(usize::MAX);
        package
            .get(start..end)
            .map(<[u8]>::to_vec)
            .ok_or(SimError::Range { offset, len })
    }

    /// One-way delay between the node at `from` and the top office (where
    /// the server is).
    pub fn delay_to_top(&self, from: IpAddr) -> Result<Duration, SimError> {
        let net = self.lock();
        if net.down.contains(&from) {
            return Err(SimError::Down(from));
        }
        let office = &net.nodes.get(&from).ok_or(SimError::NoNode(from))?.office;
        let path = path_up(&net.offices, office);
        let lan = net.offices[office].lan.delay;
        Ok(lan
            + path
                .iter()
                .map(|o| net.offices[o].uplink.link().delay)
                .sum::<Duration>())
    }

    /// Sends `bytes` from the node at `from` to the node at `to`, starting
    /// now; returns when they arrive, or the loss that broke the request.
    pub fn carry(&self, from: IpAddr, to: IpAddr, bytes: u64) -> Result<Instant, SimError> {
        let mut net = self.lock();
        let now = Instant::now();
        let office = |addr: IpAddr| {
            net.nodes
                .get(&addr)
                .map(|n| n.office.clone())
                .ok_or(SimError::NoNode(addr))
        };
        let (holder, asker) = (office(from)?, office(to)?);
        *net.served.entry(from).or_default() += bytes;
        if holder == asker {
            // A switched LAN: each pair of nodes has the link to itself.
            let lan = net.offices[&asker].lan;
            net.lose(lan)?;
            return Ok(lan.unqueued(bytes, now));
        }
        let up_from_holder = path_up(&net.offices, &holder);
        let up_from_asker = path_up(&net.offices, &asker);
        // The links below the offices' nearest common office, in the
        // order the bytes cross them: up from the holder, then down to
        // the asker.
        let crossed: Vec<String> = up_from_holder
            .iter()
            .filter(|o| !up_from_asker.contains(o))
            .chain(
                up_from_asker
                    .iter()
                    .rev()
                    .filter(|o| !up_from_holder.contains(o)),
            )
            .cloned()
            .collect();
        net.along(&crossed, bytes, now)
    }

    /// Sends `bytes` from the origin at `url` to the node at `to`,
    /// starting now.
    pub fn carry_from_origin(
        &self,
        url: &str,
        to: IpAddr,
        bytes: u64,
    ) -> Result<Instant, SimError> {
        let mut net = self.lock();
        if net.down.contains(&to) {
            return Err(SimError::Down(to));
        }
        let office = net
            .nodes
            .get(&to)
            .ok_or(SimError::NoNode(to))?
            .office
            .clone();
        let now = Instant::now();
        let origin = net.origin.as_mut().ok_or(SimError::NoOriginLink)?;
        let at_top = origin.carry(bytes, now);
        *net.origin_bytes.entry(url.to_owned()).or_default() += bytes;
        let mut down_to = path_up(&net.offices, &office);
        down_to.reverse();
        net.along(&down_to, bytes, at_top)
    }
}

impl Net {
    /// Draws whether a request across `link` is lost.
    fn lose(&mut self, link: Link) -> Result<(), SimError> {
        if link.loss <= 0.0 {
            return Ok(());
        }
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let draw = (self.seed >> 11) as f64 / (1u64 << 53) as f64;
        if draw < link.loss {
            Err(SimError::Lost)
        } else {
            Ok(())
        }
    }

    /// Carries `bytes`, reaching the first link at `at`, across the links
    /// into each of `offices` in turn; returns when they arrive. A request
    /// lost on any of them fails before it takes any of their time.
    fn along(
        &mut self,
        offices: &[String],
        bytes: u64,
        mut at: Instant,
    ) -> Result<Instant, SimError> {
        for office in offices {
            let link = self.offices[office].uplink.link();
            self.lose(link)?;
        }
        for office in offices {
            let place = self.offices.get_mut(office).expect("an office of the path");
            at = place.uplink.carry(bytes, at);
        }
        Ok(at)
    }
}

/// `office` and every office above it but the top one: the offices whose
/// links lead from the top down to it (top-most last).
fn path_up(offices: &BTreeMap<String, Place>, office: &str) -> Vec<String> {
    let mut path = Vec::new();
    let mut at = offices.get(office);
    let mut name = office.to_owned();
    while let Some(place) = at {
        let Some(parent) = &place.parent else { break };
        path.push(name);
        name = parent.clone();
        at = offices.get(parent);
    }
    path
}
