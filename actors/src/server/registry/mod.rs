//! The server's registry as a plain state machine: clients and their
//! heartbeats, published contents, who holds which pieces, and origin
//! leases. It takes `now` as an argument and does no I/O; the registry actor
//! drives it and persists what it reports as changed.
//!
//! **Origin leases** are how a piece leaves the origin once: a client asks
//! for up to N pieces that nobody holds, and the registry grants pieces that
//! nobody holds and nobody else is fetching. A lease ends when its holder
//! reports the piece, gives it back, expires (`lease_ttl`) or its holder
//! leaves.
//!
//! Every change to a content's holdings or leases bumps its version, which
//! wakes long-polling `Sources` queries.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use branchline_storage::{ClientRecord, ContentId, ContentRecord, NodeId, PieceMap};

use crate::server::answer_delta::Answered;
use crate::server::election::Attributes;
use crate::server::offices::OfficeBook;
use crate::topology::Topology;
use crate::wire::{BadPiece, ByteCounters, OfficeInfo, Registration};
use content::{Content, Lease};

mod content;
mod sources;
#[cfg(test)]
mod tests;
mod views;

/// Most peers one sources answer lists: enough to keep every piece that
/// anyone holds reachable and the asker's requests spread, while the answer
/// stays small however many clients hold the content.
pub const MAX_PEERS_PER_ANSWER: usize = 64;

/// How long after the last question about a content an office still wants
/// it (its RVP is told to pull it).
pub const WANTED_TTL: Duration = Duration::from_secs(60);

/// How long the record of a sources answer is kept for the next answer to
/// be a delta against: well beyond a long-poll, so only askers that
/// stopped asking (their download finished) lose it.
const ANSWERED_TTL: Duration = Duration::from_secs(120);

/// Registered clients a server holds at most, unless configured.
pub const DEFAULT_MAX_CLIENTS: usize = 200_000;

/// Timing of the registry.
#[derive(Clone, Copy, Debug)]
pub struct RegistryTiming {
    /// A client with no heartbeat for this long is dropped.
    pub client_timeout: Duration,
    /// An origin lease not fulfilled within this long is given to someone else.
    pub lease_ttl: Duration,
    /// How long an office may go without progress on a content it wants
    /// before its clients stop waiting for the RVP and cross the WAN
    /// themselves.
    pub rvp_patience: Duration,
}

/// Why the registry refused a request.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    /// The client is not registered (or was expired).
    #[error("client {0} is not registered")]
    UnknownClient(NodeId),
    /// The server holds as many registered clients as it is allowed.
    #[error(
        "the server has its cap of {0} registered clients (registry.max_clients); try again later"
    )]
    Full(usize),
    /// No such content.
    #[error("content {0} is not published")]
    UnknownContent(ContentId),
    /// A have-map of the wrong length.
    #[error("have-map of {got} pieces for content {content} of {expected} pieces")]
    BadHaveMap {
        /// The content.
        content: ContentId,
        /// Pieces in the content.
        expected: u32,
        /// Pieces in the map.
        got: u32,
    },
    /// Confidential, but with no origin to fetch it from.
    #[error(
        "content {0} is confidential but has no origin: no peer ever serves it, so it needs one"
    )]
    ConfidentialWithoutOrigin(ContentId),
    /// Published again with the other confidentiality.
    #[error("content {content} is already published {was}; purge it first to publish it {asked}")]
    Confidentiality {
        /// The content.
        content: ContentId,
        /// How it is published: "confidential" or "shareable".
        was: &'static str,
        /// How it was asked to be published.
        asked: &'static str,
    },
}

/// How a content may be shared, for people.
fn sharing(confidential: bool) -> &'static str {
    if confidential {
        "confidential"
    } else {
        "shareable"
    }
}

#[derive(Debug)]
struct Client {
    record: ClientRecord,
    last_seen: Instant,
    counters: ByteCounters,
}

/// What changed and must be persisted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dirty {
    /// Clients registered or re-registered.
    pub clients: Vec<ClientRecord>,
    /// Clients removed (with their holdings).
    pub removed: Vec<NodeId>,
    /// Holdings changed.
    pub holdings: Vec<(ContentId, NodeId, PieceMap)>,
    /// The topology, if it changed (an automatic office was made).
    pub topology: Option<Topology>,
}

/// The registry.
#[derive(Debug)]
pub struct Registry {
    timing: RegistryTiming,
    clients: HashMap<NodeId, Client>,
    contents: HashMap<ContentId, Content>,
    dirty_clients: HashSet<NodeId>,
    dirty_holdings: HashSet<(ContentId, NodeId)>,
    removed: HashSet<NodeId>,
    offices: OfficeBook,
    /// Contents each office's clients asked about, and when last.
    wanted: HashMap<String, HashMap<ContentId, Instant>>,
    /// When each office last gained pieces of a content it wants.
    progress: HashMap<(ContentId, String), Instant>,
    /// Clients that stopped waiting for their RVP (logged once each).
    fallbacks: HashSet<(ContentId, NodeId)>,
    /// Pieces leased from the origin, by office and reason.
    origin_use: BTreeMap<(String, &'static str), u64>,
    /// The last sources answer to each asker about each content, which
    /// the next answer is a delta against.
    answered: HashMap<(NodeId, ContentId), Answered>,
    /// Peers banned for bad bytes in an office: who reported, and the
    /// evidence. Kept until the server restarts.
    bans: BTreeMap<String, BTreeMap<NodeId, (NodeId, Vec<BadPiece>)>>,
    /// Registered clients at most.
    max_clients: usize,
    /// The number of the last purge made durable: every office info
    /// carries it, and a client that has seen fewer asks for the rest.
    purge_seq: u64,
}

impl Registry {
    /// An empty registry with the default topology (one top office; every
    /// client in an automatic office of its /24).
    pub fn new(timing: RegistryTiming) -> Self {
        Registry {
            timing,
            clients: HashMap::new(),
            contents: HashMap::new(),
            dirty_clients: HashSet::new(),
            dirty_holdings: HashSet::new(),
            removed: HashSet::new(),
            offices: OfficeBook::new(Topology::default()),
            wanted: HashMap::new(),
            progress: HashMap::new(),
            fallbacks: HashSet::new(),
            origin_use: BTreeMap::new(),
            answered: HashMap::new(),
            bans: BTreeMap::new(),
            purge_seq: 0,
            max_clients: DEFAULT_MAX_CLIENTS,
        }
    }

    /// Reloads what the store kept. Clients get a full timeout from `now` to
    /// send a heartbeat before they expire.
    pub fn restore(
        &mut self,
        contents: Vec<(ContentRecord, bool)>,
        clients: Vec<ClientRecord>,
        holdings: Vec<(ContentId, NodeId, PieceMap)>,
        topology: Option<Topology>,
        now: Instant,
    ) {
        if let Some(topology) = topology {
            self.offices = OfficeBook::new(topology);
        }
        for (record, confidential) in contents {
            self.contents.insert(
                record.manifest.content_id(),
                Content::new(record, confidential),
            );
        }
        for record in clients {
            self.offices.join(record.id, &record.name, record.addr.ip());
            self.clients.insert(
                record.id,
                Client {
                    record,
                    last_seen: now,
                    counters: ByteCounters::default(),
                },
            );
        }
        for (content, client, have) in holdings {
            if let Some(c) = self.contents.get_mut(&content)
                && self.clients.contains_key(&client)
                && have.len() == c.record.manifest.piece_count()
            {
                c.put_holder(client, have);
            }
        }
    }

    /// Publishes a content, `confidential` or not. Publishing the same
    /// content again adds origins it did not list before, and is refused if
    /// it would change its confidentiality. Returns its id.
    pub fn publish(
        &mut self,
        record: ContentRecord,
        confidential: bool,
    ) -> Result<ContentId, RegistryError> {
        let id = record.manifest.content_id();
        if confidential && record.origins.is_empty() {
            return Err(RegistryError::ConfidentialWithoutOrigin(id));
        }
        match self.contents.get_mut(&id) {
            Some(existing) if existing.confidential != confidential => {
                return Err(RegistryError::Confidentiality {
                    content: id,
                    was: sharing(existing.confidential),
                    asked: sharing(confidential),
                });
            }
            Some(existing) => {
                for origin in record.origins {
                    if !existing.record.origins.contains(&origin) {
                        existing.record.origins.push(origin);
                    }
                }
            }
            None => {
                self.contents.insert(id, Content::new(record, confidential));
            }
        }
        Ok(id)
    }

    /// Whether a content is published as confidential.
    pub fn is_confidential(&self, id: &ContentId) -> bool {
        self.contents.get(id).is_some_and(|c| c.confidential)
    }

    /// A content's record.
    pub fn content(&self, id: &ContentId) -> Option<&ContentRecord> {
        self.contents.get(id).map(|c| &c.record)
    }

    /// The current version of a content's holdings and leases.
    pub fn version(&self, id: &ContentId) -> Option<u64> {
        self.contents.get(id).map(|c| c.version)
    }

    /// Registers a client with what it holds (unknown contents and maps of
    /// the wrong length are skipped).
    /// `seen` is the address the server sees the client's packets come
    /// from: its office follows that, not the address it advertises (the
    /// caller logs when they differ).
    /// A client not yet registered is refused once `max_clients` are.
    pub fn register(
        &mut self,
        reg: Registration,
        seen: std::net::IpAddr,
        now_ms: u64,
        now: Instant,
    ) -> Result<(), RegistryError> {
        if !self.clients.contains_key(&reg.id) && self.clients.len() >= self.max_clients {
            return Err(RegistryError::Full(self.max_clients));
        }
        self.offices.join(reg.id, &reg.name, seen);
        self.offices.set_attributes(&reg.id, reg.attributes);
        let record = ClientRecord {
            id: reg.id,
            name: reg.name,
            addr: reg.addr,
            background: reg.background,
            last_seen_ms: now_ms,
        };
        self.clients.insert(
            reg.id,
            Client {
                record,
                last_seen: now,
                counters: ByteCounters::default(),
            },
        );
        self.dirty_clients.insert(reg.id);
        self.removed.remove(&reg.id);
        for (content, have) in reg.holdings {
            let _ = self.set_have(reg.id, content, have);
        }
        Ok(())
    }

    /// Registered clients beyond `max` are refused (default:
    /// [`DEFAULT_MAX_CLIENTS`]).
    pub fn cap_clients(&mut self, max: usize) {
        self.max_clients = max;
    }

    /// Records a heartbeat. False if the client is unknown (it must register).
    pub fn heartbeat(&mut self, id: &NodeId, now: Instant) -> bool {
        match self.clients.get_mut(id) {
            Some(c) => {
                c.last_seen = now;
                true
            }
            None => false,
        }
    }

    /// A heartbeat with the client's current attributes; its office as it is
    /// now, or `None` if the client is unknown (it must register).
    pub fn heartbeat_with(
        &mut self,
        id: &NodeId,
        attributes: Attributes,
        counters: ByteCounters,
        now: Instant,
    ) -> Option<OfficeInfo> {
        if !self.heartbeat(id, now) {
            return None;
        }
        if let Some(client) = self.clients.get_mut(id) {
            client.counters = counters;
        }
        self.offices.set_attributes(id, attributes);
        let mut info = self.office_info(id, now)?;
        if info.rvps.contains(id) {
            info.wanted = self.wanted_from_rvp(id, &info.name, now);
        }
        Some(info)
    }

    /// Contents the clients of `office` asked about within [`WANTED_TTL`]
    /// that its RVP `id` does not hold whole: what the RVP should pull into
    /// the office.
    fn wanted_from_rvp(&mut self, id: &NodeId, office: &str, now: Instant) -> Vec<ContentId> {
        let Some(asked) = self.wanted.get_mut(office) else {
            return Vec::new();
        };
        asked.retain(|_, at| now.duration_since(*at) < WANTED_TTL);
        asked
            .keys()
            .filter(|content| {
                self.contents
                    .get(content)
                    .is_some_and(|c| !c.holders.get(id).is_some_and(PieceMap::is_complete))
            })
            .copied()
            .collect()
    }

    /// `id` says `peer` stopped answering it. False if `id` is unknown.
    pub fn report_unresponsive(&mut self, id: NodeId, peer: NodeId, now: Instant) -> bool {
        if !self.heartbeat(&id, now) {
            return false;
        }
        if self.offices.report_unresponsive(peer, id, now) {
            self.answers_change_for(&peer);
        }
        true
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

    /// A registered client's office, with its RVPs and the number of the
    /// last purge.
    pub fn office_info(&mut self, id: &NodeId, now: Instant) -> Option<OfficeInfo> {
        let mut info = self.offices.info(id, now)?;
        info.purge_seq = self.purge_seq;
        Some(info)
    }

    /// The purge numbered `seq` is durable (or, at start, the last one
    /// made): office infos carry it from now on.
    pub fn purged_up_to(&mut self, seq: u64) {
        self.purge_seq = self.purge_seq.max(seq);
    }

    /// Purges a content: forgets it, its holdings and leases. Clients
    /// learn of it once it is durable ([`Registry::purged_up_to`]). False
    /// if it was not published.
    pub fn purge(&mut self, id: &ContentId) -> bool {
        if self.contents.remove(id).is_none() {
            return false;
        }
        self.answered.retain(|(_, content), _| content != id);
        self.dirty_holdings.retain(|(content, _)| content != id);
        self.progress.retain(|(content, _), _| content != id);
        for asked in self.wanted.values_mut() {
            asked.remove(id);
        }
        tracing::warn!(content = %id, "content purged; clients drop it at their next heartbeat");
        true
    }

    /// The topology.
    pub fn topology(&self) -> &Topology {
        self.offices.topology()
    }

    /// Replaces the topology; every client moves to its new office.
    pub fn set_topology(&mut self, topology: Topology) {
        self.offices.set_topology(topology);
    }

    /// A client reports what it holds of a content.
    pub fn report_have(
        &mut self,
        id: NodeId,
        content: ContentId,
        have: PieceMap,
        now: Instant,
    ) -> Result<(), RegistryError> {
        if !self.heartbeat(&id, now) {
            return Err(RegistryError::UnknownClient(id));
        }
        if self.set_have(id, content, have)? > 0
            && let Some(office) = self.offices.office_of(&id)
        {
            self.progress.insert((content, office.to_owned()), now);
        }
        Ok(())
    }

    /// Records what `id` holds; returns how many pieces it gained.
    fn set_have(
        &mut self,
        id: NodeId,
        content: ContentId,
        have: PieceMap,
    ) -> Result<u32, RegistryError> {
        let c = self
            .contents
            .get_mut(&content)
            .ok_or(RegistryError::UnknownContent(content))?;
        let expected = c.record.manifest.piece_count();
        if have.len() != expected {
            return Err(RegistryError::BadHaveMap {
                content,
                expected,
                got: have.len(),
            });
        }
        if c.confidential {
            // Never a source for anyone: its holders are not kept.
            return Ok(0);
        }
        // A lease ends when anyone holds the piece.
        c.leases.retain(|&i, _| !have.get(i));
        let gained = c.put_holder(id, have);
        if gained.is_some() {
            self.dirty_holdings.insert((content, id));
        }
        Ok(gained.unwrap_or(0))
    }

    /// Drops clients whose heartbeats stopped, with their holdings and
    /// leases. Returns who was dropped.
    pub fn expire(&mut self, now: Instant) -> Vec<NodeId> {
        let timeout = self.timing.client_timeout;
        let gone: Vec<NodeId> = self
            .clients
            .iter()
            .filter(|(_, c)| now.duration_since(c.last_seen) > timeout)
            .map(|(id, _)| *id)
            .collect();
        self.drop_clients(&gone, now);
        self.answered
            .retain(|_, a| now.duration_since(a.at) < ANSWERED_TTL);
        gone
    }

    /// A client said it is shutting down: it is dropped at once, as if its
    /// heartbeats had stopped. False if it was not registered.
    pub fn leave(&mut self, id: NodeId, now: Instant) -> bool {
        if !self.clients.contains_key(&id) {
            return false;
        }
        self.drop_clients(&[id], now);
        true
    }

    fn drop_clients(&mut self, gone: &[NodeId], now: Instant) {
        self.answered.retain(|(asker, _), _| !gone.contains(asker));
        for id in gone {
            self.clients.remove(id);
            self.offices.leave(id);
            self.removed.insert(*id);
            self.dirty_clients.remove(id);
        }
        for c in self.contents.values_mut() {
            let leases = c.leases.len();
            // Removing a holder moves the version itself.
            for id in gone {
                c.remove_holder(id);
            }
            c.leases.retain(|_, l| !gone.contains(&l.holder));
            let expired = c.expire_leases(now);
            if expired || leases != c.leases.len() {
                c.version += 1;
            }
        }
    }

    /// Marks the topology as still to be stored: taken by
    /// [`Registry::take_dirty`], its save was put off.
    pub fn keep_topology_dirty(&mut self) {
        self.offices.keep_dirty();
    }

    /// Takes what changed since the last call, for persisting.
    pub fn take_dirty(&mut self) -> Dirty {
        let clients = self
            .dirty_clients
            .drain()
            .filter_map(|id| self.clients.get(&id).map(|c| c.record.clone()))
            .collect();
        let holdings = self
            .dirty_holdings
            .drain()
            .filter_map(|(content, client)| {
                let have = self.contents.get(&content)?.holders.get(&client)?;
                Some((content, client, have.clone()))
            })
            .collect();
        Dirty {
            clients,
            removed: self.removed.drain().collect(),
            holdings,
            topology: self.offices.take_dirty(),
        }
    }

    /// `id` banned `peer` for bad bytes: the registry stops offering
    /// `peer` to `id`'s office (its pieces no longer count as held there,
    /// so the origin may be leased for them). False if `id` is unknown.
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
        let Some(office) = self.offices.office_of(&id).map(str::to_owned) else {
            return false;
        };
        let first = evidence
            .first()
            .map(|e| e.error.clone())
            .unwrap_or_default();
        if self
            .bans
            .entry(office.clone())
            .or_default()
            .insert(peer, (id, evidence))
            .is_none()
        {
            tracing::warn!(%office, %peer, by = %id, evidence = %first, "peer banned in an office for bad bytes");
            self.answers_change_for(&peer);
        }
        true
    }
}
