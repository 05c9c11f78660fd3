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

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use branchline_storage::{ClientRecord, ContentId, ContentRecord, NodeId, PieceMap};

use crate::client::stuck::MAX_STUCK_PER_QUERY;
use crate::server::answer_delta::{self, Answered, Leases, Source};
use crate::server::election::Attributes;
use crate::server::holdings_log::HoldingsLog;
use crate::server::offices::OfficeBook;
use crate::topology::Topology;
use crate::wire::{
    BadPiece, BanView, ByteCounters, ClientView, ContentView, LinkView, OfficeInfo, OfficeView,
    OriginUse, Registration, SourcesAnswer, SourcesQuery, TopologyView,
};

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

#[derive(Debug, Clone, Copy)]
struct Lease {
    holder: NodeId,
    expires: Instant,
}

#[derive(Debug)]
struct Content {
    record: ContentRecord,
    /// Never shared by peers; nobody's holdings of it are kept.
    confidential: bool,
    holders: BTreeMap<NodeId, PieceMap>,
    leases: BTreeMap<u32, Lease>,
    version: u64,
    log: HoldingsLog,
}

impl Content {
    fn new(record: ContentRecord, confidential: bool) -> Self {
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
    fn put_holder(&mut self, id: NodeId, have: PieceMap) -> Option<u32> {
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
    fn remove_holder(&mut self, id: &NodeId) -> bool {
        let Some(before) = self.holders.remove(id) else {
            return false;
        };
        self.version += 1;
        self.log.record(self.version, *id, Some(&before), None);
        true
    }

    /// What the holders `keep` accepts hold between them.
    fn held_among(&self, keep: impl Fn(&NodeId) -> bool) -> PieceMap {
        let mut held = PieceMap::new(self.record.manifest.piece_count());
        for (_, have) in self.holders.iter().filter(|(id, _)| keep(id)) {
            for i in have.iter_set() {
                held.set(i);
            }
        }
        held
    }

    /// At most `cap` holders other than `asker` (and accepted by `keep`) for
    /// its answer: first those
    /// that add pieces the chosen ones do not cover yet, so every piece
    /// someone holds stays reachable, then others to spread the load. The
    /// walk starts at the asker's id, so different askers are sent to
    /// different peers.
    fn chosen_peers(
        &self,
        asker: &NodeId,
        cap: usize,
        keep: impl Fn(&NodeId) -> bool,
    ) -> Vec<(&NodeId, &PieceMap)> {
        let walk = || {
            self.holders
                .range(asker..)
                .chain(self.holders.range(..asker))
                .filter(|(id, have)| *id != asker && have.count() > 0 && keep(id))
        };
        let mut covered = PieceMap::new(self.record.manifest.piece_count());
        let mut chosen: Vec<(&NodeId, &PieceMap)> = Vec::new();
        for (id, have) in walk() {
            if chosen.len() == cap {
                return chosen;
            }
            if have.iter_set().any(|i| !covered.get(i)) {
                have.iter_set().for_each(|i| {
                    covered.set(i);
                });
                chosen.push((id, have));
            }
        }
        for (id, have) in walk() {
            if chosen.len() == cap {
                break;
            }
            if !chosen.iter().any(|(c, _)| *c == id) {
                chosen.push((id, have));
            }
        }
        chosen
    }

    /// Leases to `lease.holder` each of `pieces` not leased yet, `most` at
    /// most; returns how many.
    fn grant(&mut self, pieces: impl Iterator<Item = u32>, most: u32, lease: Lease) -> u32 {
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

    fn expire_leases(&mut self, now: Instant) -> bool {
        let before = self.leases.len();
        self.leases.retain(|_, l| l.expires > now);
        before != self.leases.len()
    }
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

    /// Answers "who holds which pieces" by the source order: peers in the
    /// asker's office; if the asker crosses the WAN for its office (its RVP,
    /// an office without RVP, or an office that stalled), holders in the
    /// nearest serving office above it; and origin leases if no office
    /// above it has clients (or its office may use the origin directly).
    /// Released leases are taken back first.
    pub fn sources(
        &mut self,
        query: &SourcesQuery,
        now: Instant,
    ) -> Result<SourcesAnswer, RegistryError> {
        if !self.heartbeat(&query.id, now) {
            return Err(RegistryError::UnknownClient(query.id));
        }
        if !self.contents.contains_key(&query.content) {
            return Err(RegistryError::UnknownContent(query.content));
        }
        let office = self
            .offices
            .office_of(&query.id)
            .expect("a registered client has an office")
            .to_owned();
        // The office and every office above it want the content: each RVP
        // on the way up pulls it, so it comes down the tree link by link.
        let path: Vec<String> = self
            .offices
            .topology()
            .path_to_top(&office)
            .iter()
            .map(|o| o.name.clone())
            .collect();
        let wanted_before = self
            .wanted
            .get(&office)
            .and_then(|w| w.get(&query.content))
            .is_some_and(|at| now.duration_since(*at) < WANTED_TTL);
        for above in path {
            self.wanted
                .entry(above)
                .or_default()
                .insert(query.content, now);
        }
        // Patience counts from the office's last gain, or from when it
        // (again) started wanting the content.
        let key = (query.content, office.clone());
        if !wanted_before {
            self.progress.insert(key.clone(), now);
        }
        let since = *self.progress.entry(key).or_insert(now);
        let stalled = now.duration_since(since) > self.timing.rvp_patience;
        let plan = self
            .offices
            .plan(&query.id, stalled, now)
            .expect("a registered client has an office");
        if plan.crossing == Some("fallback") && self.fallbacks.insert((query.content, query.id)) {
            tracing::warn!(
                client = %query.id, %office, content = %query.content,
                patience_s = self.timing.rvp_patience.as_secs(),
                "office made no progress; this client crosses the WAN itself instead of waiting for its RVP"
            );
        }
        if let Some(upstream) = &plan.upstream {
            // Brings the upstream office's election order up to date.
            self.offices.rvps(upstream, now);
        }
        let offices = &self.offices;
        let banned_here = self.bans.get(&office);
        let trusted = |id: &NodeId| !banned_here.is_some_and(|b| b.contains_key(id));
        let in_office = |id: &NodeId| offices.serves_in(&office, id, now) && trusted(id);
        let ttl = self.timing.lease_ttl;
        let c = self
            .contents
            .get_mut(&query.content)
            .expect("checked above");
        let mut changed = c.expire_leases(now);
        for index in &query.release {
            if c.leases.get(index).is_some_and(|l| l.holder == query.id) {
                c.leases.remove(index);
                changed = true;
            }
        }
        let len = c.record.manifest.piece_count();
        let lease = Lease {
            holder: query.id,
            expires: now + ttl,
        };
        // Pieces the asker's peers claim but never delivered: the origin
        // takes over from any office (the deadline on a download).
        let asker_has = c.holders.get(&query.id).cloned();
        let stuck = query
            .stuck
            .iter()
            .take(MAX_STUCK_PER_QUERY)
            .copied()
            .filter(|&i| i < len && !asker_has.as_ref().is_some_and(|h| h.get(i)));
        let mut new = c.grant(stuck, query.want_leases, lease);
        let stuck_leases = new;
        if plan.origin {
            let office_has = c.held_among(in_office);
            let unheld = (0..len).filter(|&i| !office_has.get(i));
            new += c.grant(unheld, query.want_leases - new, lease);
        }
        if changed || new > 0 {
            c.version += 1;
        }
        for (reason, count) in [
            ("stuck", stuck_leases),
            (
                plan.origin_reason.unwrap_or("top office"),
                new - stuck_leases,
            ),
        ] {
            if count == 0 {
                continue;
            }
            let used = self.origin_use.entry((office.clone(), reason)).or_insert(0);
            if *used == 0 {
                tracing::info!(%office, content = %query.content, reason, "the office takes pieces from the origin");
            }
            *used += u64::from(count);
        }
        let mut leased_elsewhere = PieceMap::new(len);
        let mut granted = Vec::new();
        for (&index, lease) in &c.leases {
            if lease.holder == query.id {
                granted.push(index);
            } else {
                leased_elsewhere.set(index);
            }
        }
        let source = |(id, have): (&NodeId, &PieceMap), from: &str, upstream: bool| {
            self.clients.get(id).map(|client| Source {
                id: *id,
                addr: if upstream {
                    client.record.background
                } else {
                    client.record.addr
                },
                upstream,
                rank: offices.rank_of(from, id).unwrap_or(u32::MAX),
                have: have.clone(),
            })
        };
        let mut sources: Vec<Source> = Vec::new();
        if plan.office_serves {
            sources.extend(
                c.chosen_peers(&query.id, MAX_PEERS_PER_ANSWER, in_office)
                    .into_iter()
                    .filter_map(|h| source(h, &office, false)),
            );
        }
        if let Some(upstream) = &plan.upstream {
            let in_upstream = |id: &NodeId| offices.serves_in(upstream, id, now) && trusted(id);
            sources.extend(
                c.chosen_peers(&query.id, MAX_PEERS_PER_ANSWER, in_upstream)
                    .into_iter()
                    .filter_map(|h| source(h, upstream, true)),
            );
        }
        let key = (query.id, query.content);
        let last = self
            .answered
            .get(&key)
            .filter(|a| query.since != 0 && a.version == query.since);
        let changes = last.and_then(|_| c.log.since(query.since));
        let (answer, record) = answer_delta::compose(
            c.version,
            &sources,
            last.zip(changes.as_ref()),
            Leases {
                elsewhere: leased_elsewhere,
                granted,
                upstream_link: plan.upstream.map(|_| plan.link),
            },
            now,
        );
        self.answered.insert(key, record);
        Ok(answer)
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

    /// Live clients, for status.
    pub fn client_views(&mut self, now: Instant) -> Vec<ClientView> {
        let mut out: Vec<ClientView> = Vec::with_capacity(self.clients.len());
        for c in self.clients.values() {
            let info = self.offices.info(&c.record.id, now);
            out.push(ClientView {
                id: c.record.id,
                name: c.record.name.clone(),
                addr: c.record.addr,
                last_seen_ms_ago: u64::try_from(now.duration_since(c.last_seen).as_millis())
                    .unwrap_or(u64::MAX),
                rvp: info.as_ref().is_some_and(|i| i.rvps.contains(&c.record.id)),
                office: info.map(|i| i.name).unwrap_or_default(),
                attributes: self.offices.attributes(&c.record.id),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        out
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

    /// Peers banned for bad bytes, by office.
    pub fn ban_views(&self) -> Vec<BanView> {
        self.bans
            .iter()
            .flat_map(|(office, peers)| {
                peers.iter().map(move |(peer, (by, evidence))| BanView {
                    office: office.clone(),
                    peer: *peer,
                    by: *by,
                    evidence: evidence.clone(),
                })
            })
            .collect()
    }

    /// Pieces leased from the origin so far, by office and reason.
    pub fn origin_views(&self) -> Vec<OriginUse> {
        self.origin_use
            .iter()
            .map(|((office, reason), pieces)| OriginUse {
                office: office.clone(),
                reason: (*reason).to_owned(),
                pieces: *pieces,
            })
            .collect()
    }

    /// Each office's ledger (its live clients' counters summed), top down.
    pub fn link_views(&self) -> Vec<LinkView> {
        let mut by_office: HashMap<&str, LinkView> = HashMap::new();
        for (id, client) in &self.clients {
            let Some(office) = self.offices.office_of(id) else {
                continue;
            };
            let link = by_office.entry(office).or_default();
            let c = &client.counters;
            link.clients += 1;
            link.from_peers += c.from_peers;
            link.from_parent += c.from_parent;
            link.wire_from_parent += c.wire_from_parent;
            link.from_origin += c.from_origin;
            link.served += c.served;
        }
        self.offices
            .topology()
            .top_down()
            .map(|o| LinkView {
                office: o.name.clone(),
                parent: o.parent.clone(),
                ..by_office.remove(o.name.as_str()).unwrap_or_default()
            })
            .collect()
    }

    /// The office tree with its clients and RVPs, top down.
    pub fn topology_view(&mut self, now: Instant) -> TopologyView {
        let name = |id: &NodeId, clients: &HashMap<NodeId, Client>| {
            clients
                .get(id)
                .map_or_else(|| id.to_string(), |c| c.record.name.clone())
        };
        let order: Vec<String> = self
            .offices
            .topology()
            .top_down()
            .map(|o| o.name.clone())
            .collect();
        let mut offices = Vec::with_capacity(order.len());
        for office in order {
            let rvps = self.offices.rvps(&office, now);
            let spec = self
                .offices
                .topology()
                .office(&office)
                .expect("listed office")
                .clone();
            let mut clients: Vec<String> = self
                .offices
                .members_of(&office)
                .map(|id| name(id, &self.clients))
                .collect();
            clients.sort();
            offices.push(OfficeView {
                name: office,
                parent: spec.parent,
                kind: spec.kind,
                blocks: spec.blocks.iter().map(ToString::to_string).collect(),
                automatic: spec.automatic,
                clients,
                rvps: rvps.iter().map(|id| name(id, &self.clients)).collect(),
            });
        }
        TopologyView { offices }
    }

    /// Published contents, for status.
    pub fn content_views(&self) -> Vec<ContentView> {
        let mut out: Vec<ContentView> = self
            .contents
            .iter()
            .map(|(id, c)| {
                let complete = c.holders.values().filter(|h| h.is_complete()).count();
                let partial = c
                    .holders
                    .values()
                    .filter(|h| !h.is_complete() && h.count() > 0)
                    .count();
                ContentView {
                    id: *id,
                    name: c.record.manifest.name.clone(),
                    size: c.record.manifest.size,
                    pieces: c.record.manifest.piece_count(),
                    origins: c.record.origins.clone(),
                    confidential: c.confidential,
                    complete_holders: u32::try_from(complete).unwrap_or(u32::MAX),
                    partial_holders: u32::try_from(partial).unwrap_or(u32::MAX),
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use branchline_storage::Manifest;
    use branchline_storage::content::MIN_PIECE_SIZE;

    use crate::client::known_sources::KnownSources;
    use crate::topology::spreadsheet;
    use crate::wire::{HaveUpdate, PeerUpdate};

    fn timing() -> RegistryTiming {
        RegistryTiming {
            client_timeout: Duration::from_secs(15),
            lease_ttl: Duration::from_secs(30),
            rvp_patience: Duration::from_secs(30),
        }
    }

    fn content(pieces: usize) -> ContentRecord {
        let data = vec![1u8; pieces * MIN_PIECE_SIZE as usize];
        let manifest = Manifest::from_reader("p", &data[..], MIN_PIECE_SIZE, |_| {}).unwrap();
        ContentRecord {
            manifest,
            origins: vec!["http://o/p".into()],
            published_ms: 0,
        }
    }

    fn node(n: u8) -> NodeId {
        NodeId([n; 16])
    }

    fn reg(n: u8) -> Registration {
        Registration {
            id: node(n),
            name: format!("c{n}"),
            addr: ([127, 0, 0, n], 34760).into(),
            background: ([127, 0, 0, n], 34750).into(),
            holdings: vec![],
            attributes: Attributes::default(),
        }
    }

    fn query(n: u8, content: ContentId, want: u32) -> SourcesQuery {
        SourcesQuery {
            id: node(n),
            content,
            since: 0,
            want_leases: want,
            release: vec![],
            stuck: vec![],
            wait_ms: 0,
        }
    }

    /// One office on 127.0.0.0/24 where every client is an RVP: the
    /// lease mechanics without the source order.
    fn setup(pieces: usize, clients: u8) -> (Registry, ContentId, Instant) {
        let now = Instant::now();
        let mut r = Registry::new(timing());
        r.set_topology(
            spreadsheet::import(
                b"office,parent,type,subnets,rvp_count\nhq,,Default,127.0.0.0/24,16\n",
            )
            .unwrap(),
        );
        let id = r.publish(content(pieces), false).unwrap();
        for n in 1..=clients {
            r.register(reg(n), reg(n).addr.ip(), 0, now).unwrap();
        }
        (r, id, now)
    }

    #[test]
    fn given_a_confidential_content_then_nobody_is_a_source_and_its_mark_cannot_change() {
        let now = Instant::now();
        let mut r = Registry::new(timing());
        let mut bare = content(2);
        bare.origins.clear();
        let err = r.publish(bare, true).unwrap_err();
        assert!(
            err.to_string().contains("confidential but has no origin"),
            "{err}"
        );
        let id = r.publish(content(2), true).unwrap();
        assert!(r.is_confidential(&id));
        let err = r.publish(content(2), false).unwrap_err();
        assert!(
            err.to_string()
                .contains("already published confidential; purge it first to publish it shareable"),
            "{err}"
        );
        r.register(reg(1), reg(1).addr.ip(), 0, now).unwrap();
        r.register(reg(2), reg(2).addr.ip(), 0, now).unwrap();
        r.report_have(node(1), id, PieceMap::full(2), now).unwrap();
        let answer = r.sources(&query(2, id, 2), now).unwrap();
        assert!(
            answer.peers.is_empty(),
            "a holder of a confidential content is never offered"
        );
        assert_eq!(r.content_views()[0].complete_holders, 0);
        assert!(r.content_views()[0].confidential);
    }

    #[test]
    fn given_answers_kept_back_in_a_long_poll_then_the_next_delta_applies_to_what_the_asker_knows()
    {
        let (mut r, id, now) = setup(8, 3);
        let mut known = KnownSources::new(8);
        let first = r.sources(&query(1, id, 0), now).unwrap();
        assert!(known.apply(&first));
        // The asker's own piece moves the version and changes nothing it
        // knows: the server keeps that answer back and waits on.
        let mut own = PieceMap::new(8);
        own.set(0);
        r.report_have(node(1), id, own, now).unwrap();
        let mut asked = query(1, id, 0);
        asked.since = first.version;
        let kept = r.sources(&asked, now).unwrap();
        assert!(kept.changes_nothing());
        let mut gained = PieceMap::new(8);
        gained.set(3);
        r.report_have(node(2), id, gained.clone(), now).unwrap();
        asked.since = kept.version;
        let next = r.sources(&asked, now).unwrap();
        assert_eq!(next.base, kept.version);
        assert!(
            !known.clone().apply(&next),
            "against the kept-back answer it does not fit"
        );
        assert!(known.apply(&next.rebased(kept.version, first.version)));
        let peer = known.peers().next().unwrap();
        assert_eq!((peer.id, &peer.have), (node(2), &gained));
    }

    #[test]
    fn given_two_askers_when_leasing_then_no_piece_is_leased_twice() {
        let (mut r, id, now) = setup(6, 2);
        let a = r.sources(&query(1, id, 4), now).unwrap();
        let b = r.sources(&query(2, id, 4), now).unwrap();
        assert_eq!(a.granted, vec![0, 1, 2, 3]);
        assert_eq!(b.granted, vec![4, 5]);
        assert_eq!(
            b.leased_elsewhere.unwrap().iter_set().collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
    }

    #[test]
    fn given_the_last_answer_seen_then_the_next_is_a_delta_of_gains_and_otherwise_complete() {
        let (mut r, id, now) = setup(8, 3);
        let first = r.sources(&query(1, id, 0), now).unwrap();
        assert_eq!(first.base, 0);
        assert!(first.peers.is_empty());
        let mut have = PieceMap::new(8);
        have.set(2);
        r.report_have(node(2), id, have.clone(), now).unwrap();
        let mut asked = query(1, id, 0);
        asked.since = first.version;
        let second = r.sources(&asked, now).unwrap();
        assert_eq!(second.base, first.version);
        assert_eq!(ids(&second.peers), vec![(2, false)]);
        assert_eq!(
            second.peers[0].have,
            HaveUpdate::Whole(have.clone()),
            "new peer"
        );
        have.set(5);
        have.set(6);
        r.report_have(node(2), id, have.clone(), now).unwrap();
        asked.since = second.version;
        let third = r.sources(&asked, now).unwrap();
        assert_eq!(third.base, second.version);
        assert_eq!(third.peers[0].have, HaveUpdate::Gained(vec![5, 6]));
        assert_eq!(third.leased_elsewhere, None);
        asked.since = third.version;
        assert!(r.sources(&asked, now).unwrap().changes_nothing());
        // Not the last answer sent (one was lost): complete again.
        asked.since = second.version;
        let again = r.sources(&asked, now).unwrap();
        assert_eq!(again.base, 0);
        assert_eq!(again.peers[0].have, HaveUpdate::Whole(have));
        // A peer that leaves is gone in the next delta.
        asked.since = again.version;
        assert!(r.leave(node(2), now));
        let after = r.sources(&asked, now).unwrap();
        assert_eq!(after.gone, vec![node(2)]);
    }

    #[test]
    fn a_purge_forgets_the_content_and_office_infos_carry_its_number_once_durable() {
        let (mut r, id, now) = setup(2, 2);
        r.report_have(node(1), id, PieceMap::full(2), now).unwrap();
        assert!(r.purge(&id));
        assert!(!r.purge(&id), "already gone");
        assert!(r.content(&id).is_none());
        assert_eq!(
            r.sources(&query(2, id, 1), now).unwrap_err(),
            RegistryError::UnknownContent(id)
        );
        assert_eq!(
            r.office_info(&node(2), now).unwrap().purge_seq,
            0,
            "not durable yet"
        );
        r.purged_up_to(7);
        r.purged_up_to(3);
        let years_later = now + Duration::from_secs(3 * 365 * 86_400);
        assert_eq!(r.office_info(&node(2), years_later).unwrap().purge_seq, 7);
        assert!(
            r.take_dirty().holdings.is_empty(),
            "nothing of it to persist"
        );
    }

    #[test]
    fn given_a_ban_then_the_office_is_not_sent_to_the_peer_and_may_lease_its_pieces() {
        let (mut r, id, now) = setup(2, 3);
        r.report_have(node(1), id, PieceMap::full(2), now).unwrap();
        assert!(r.sources(&query(2, id, 2), now).unwrap().granted.is_empty());
        let evidence = vec![BadPiece {
            content: id,
            piece: 0,
            error: "piece 0 hash mismatch".into(),
        }];
        assert!(r.report_ban(node(2), node(1), evidence, now));
        for asker in [2, 3] {
            let answer = r.sources(&query(asker, id, 2), now).unwrap();
            assert!(answer.peers.is_empty(), "asker {asker}: {:?}", answer.peers);
        }
        assert_eq!(
            r.sources(&query(2, id, 2), now).unwrap().granted,
            vec![0, 1]
        );
        let bans = r.ban_views();
        assert_eq!(
            (bans.len(), bans[0].peer, bans[0].by),
            (1, node(1), node(2))
        );
        assert!(
            !r.report_ban(node(9), node(1), Vec::new(), now),
            "unknown reporter"
        );
    }

    #[test]
    fn given_a_held_piece_when_leasing_then_it_is_not_granted_and_the_holder_is_a_source() {
        let (mut r, id, now) = setup(3, 2);
        let mut have = PieceMap::new(3);
        have.set(0);
        r.report_have(node(1), id, have, now).unwrap();
        let b = r.sources(&query(2, id, 5), now).unwrap();
        assert_eq!(b.granted, vec![1, 2]);
        assert_eq!(b.peers.len(), 1);
        assert_eq!(b.peers[0].id, node(1));
    }

    #[test]
    fn given_a_lease_when_reported_released_or_expired_then_it_ends() {
        let (mut r, id, now) = setup(3, 2);
        assert_eq!(
            r.sources(&query(1, id, 3), now).unwrap().granted,
            vec![0, 1, 2]
        );
        let mut have = PieceMap::new(3);
        have.set(0);
        r.report_have(node(1), id, have, now).unwrap();
        let mut q = query(1, id, 0);
        q.release = vec![1];
        assert_eq!(r.sources(&q, now).unwrap().granted, vec![2]);
        // Client 2 gets piece 1 now, and piece 2 once client 1's lease
        // expires (its own expired lease on 1 is granted to it again).
        assert_eq!(r.sources(&query(2, id, 3), now).unwrap().granted, vec![1]);
        let later = now + Duration::from_secs(31);
        r.heartbeat(&node(1), later);
        assert_eq!(
            r.sources(&query(2, id, 3), later).unwrap().granted,
            vec![1, 2]
        );
        assert!(
            r.sources(&query(1, id, 3), later)
                .unwrap()
                .granted
                .is_empty()
        );
    }

    #[test]
    fn given_silent_clients_when_expiring_then_they_their_holdings_and_leases_go() {
        let (mut r, id, now) = setup(2, 2);
        r.report_have(node(1), id, PieceMap::full(2), now).unwrap();
        r.sources(&query(2, id, 0), now).unwrap();
        let v = r.version(&id).unwrap();
        let later = now + Duration::from_secs(16);
        r.heartbeat(&node(2), later);
        assert_eq!(r.expire(later), vec![node(1)]);
        assert!(r.version(&id).unwrap() > v);
        let answer = r.sources(&query(2, id, 2), later).unwrap();
        assert!(answer.peers.is_empty());
        assert_eq!(answer.granted, vec![0, 1]);
        assert_eq!(
            r.report_have(node(1), id, PieceMap::full(2), later),
            Err(RegistryError::UnknownClient(node(1)))
        );
        assert_eq!(r.take_dirty().removed, vec![node(1)]);
    }

    #[test]
    fn given_a_client_that_leaves_then_it_is_gone_at_once_and_a_second_leave_is_refused() {
        let (mut r, id, now) = setup(2, 2);
        r.report_have(node(1), id, PieceMap::full(2), now).unwrap();
        assert_eq!(r.sources(&query(2, id, 0), now).unwrap().peers.len(), 1);
        assert!(r.leave(node(1), now));
        let answer = r.sources(&query(2, id, 2), now).unwrap();
        assert!(answer.peers.is_empty(), "no heartbeat timeout to wait for");
        assert_eq!(answer.granted, vec![0, 1]);
        assert!(!r.leave(node(1), now));
        assert_eq!(r.take_dirty().removed, vec![node(1)]);
    }

    #[test]
    fn given_bad_reports_then_they_are_refused_with_reasons() {
        let (mut r, id, now) = setup(2, 1);
        let err = r
            .report_have(node(1), id, PieceMap::new(5), now)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("have-map of 5 pieces for content {id} of 2 pieces")
        );
        let other = branchline_storage::Hash([9; 32]);
        assert_eq!(
            r.report_have(node(1), other, PieceMap::new(2), now),
            Err(RegistryError::UnknownContent(other))
        );
    }

    #[test]
    fn given_changes_then_versions_move_and_dirty_lists_them_once() {
        let (mut r, id, now) = setup(2, 1);
        let v0 = r.version(&id).unwrap();
        r.report_have(node(1), id, PieceMap::full(2), now).unwrap();
        let v1 = r.version(&id).unwrap();
        assert!(v1 > v0);
        r.report_have(node(1), id, PieceMap::full(2), now).unwrap();
        assert_eq!(r.version(&id).unwrap(), v1, "same map, no change");
        let dirty = r.take_dirty();
        assert_eq!(dirty.holdings.len(), 1);
        assert_eq!(dirty.clients.len(), 1);
        assert_eq!(r.take_dirty(), Dirty::default());
    }

    #[test]
    fn given_a_restart_when_restored_then_holdings_come_back() {
        let (mut r, id, now) = setup(2, 1);
        r.report_have(node(1), id, PieceMap::full(2), now).unwrap();
        let record = r.content(&id).unwrap().clone();
        let dirty = r.take_dirty();
        let mut back = Registry::new(timing());
        assert!(dirty.topology.is_none(), "the import stored it already");
        back.restore(
            vec![(record, false)],
            dirty.clients,
            dirty.holdings,
            Some(r.topology().clone()),
            now,
        );
        assert!(back.topology().office("hq").is_some());
        back.register(reg(2), reg(2).addr.ip(), 0, now).unwrap();
        let answer = back.sources(&query(2, id, 2), now).unwrap();
        assert_eq!(answer.peers.len(), 1);
        assert!(answer.granted.is_empty());
        assert_eq!(back.content_views()[0].complete_holders, 1);
    }

    #[test]
    fn given_more_holders_than_the_cap_when_asked_then_the_answer_is_capped_and_keeps_the_rare_piece()
     {
        let clients = u8::try_from(MAX_PEERS_PER_ANSWER + 20).unwrap();
        let (mut r, id, now) = setup(4, clients);
        // Everyone holds piece 0; only the last client holds piece 3.
        for n in 2..=clients {
            let mut have = PieceMap::new(4);
            have.set(0);
            if n == clients {
                have.set(3);
            }
            r.report_have(node(n), id, have, now).unwrap();
        }
        let answer = r.sources(&query(1, id, 0), now).unwrap();
        assert_eq!(answer.peers.len(), MAX_PEERS_PER_ANSWER);
        assert!(answer.peers.iter().all(|p| p.id != node(1)));
        assert!(answer.peers.iter().any(|p| p.id == node(clients)));
        // Pieces 1 and 2 are held by nobody: they can be leased.
        let leased = r.sources(&query(1, id, 4), now).unwrap();
        assert_eq!(leased.granted, vec![1, 2]);
    }

    #[test]
    fn given_a_holder_that_leaves_when_leasing_then_its_pieces_are_free_again() {
        let (mut r, id, now) = setup(2, 2);
        r.report_have(node(2), id, PieceMap::full(2), now).unwrap();
        assert!(r.sources(&query(1, id, 2), now).unwrap().granted.is_empty());
        // Client 1 keeps asking (its heartbeat); client 2 goes silent.
        let later = now + timing().client_timeout / 2;
        r.sources(&query(1, id, 0), later).unwrap();
        assert_eq!(
            r.expire(now + timing().client_timeout + Duration::from_secs(1)),
            vec![node(2)]
        );
        let after = now + timing().client_timeout + Duration::from_secs(1);
        assert_eq!(
            r.sources(&query(1, id, 2), after).unwrap().granted,
            vec![0, 1]
        );
    }

    /// hq (127.0.1.0/24), branch under it (127.0.2.0/24) and a VPN office
    /// (127.0.3.0/24); client n registers at `net`.n.
    fn offices(pieces: usize) -> (Registry, ContentId, Instant) {
        let now = Instant::now();
        let mut r = Registry::new(timing());
        r.set_topology(
            spreadsheet::import(
                b"office,parent,type,subnets\nhq,,Default,127.0.1.0/24\n\
                  branch,hq,Default,127.0.2.0/24\nvpn,hq,VPN,127.0.3.0/24\n",
            )
            .unwrap(),
        );
        let id = r.publish(content(pieces), false).unwrap();
        for (n, net, free) in [(1, 1, 90), (2, 1, 10), (3, 2, 90), (4, 2, 10), (5, 3, 90)] {
            let mut reg = reg(n);
            reg.addr = ([127, 0, net, n], 34760).into();
            reg.attributes.free_bytes = free << 30;
            let seen = reg.addr.ip();
            r.register(reg, seen, 0, now).unwrap();
        }
        (r, id, now)
    }

    #[test]
    fn given_a_client_claiming_another_address_then_its_office_follows_the_one_seen() {
        let (mut r, _, now) = offices(2);
        let mut liar = reg(9);
        liar.addr = ([127, 0, 1, 9], 34760).into(); // claims hq
        r.register(liar, [127, 0, 3, 9].into(), 0, now).unwrap(); // comes from the VPN office
        assert_eq!(r.offices.office_of(&node(9)), Some("vpn"));
    }

    #[test]
    fn given_the_cap_of_clients_then_a_new_one_is_refused_and_a_known_one_still_registers() {
        let (mut r, _, now) = setup(2, 2);
        r.cap_clients(2);
        let err = r.register(reg(3), reg(3).addr.ip(), 0, now).unwrap_err();
        assert_eq!(err, RegistryError::Full(2));
        assert!(err.to_string().contains("registry.max_clients"));
        r.register(reg(1), reg(1).addr.ip(), 0, now).unwrap();
    }

    fn ids(peers: &[PeerUpdate]) -> Vec<(u8, bool)> {
        peers.iter().map(|p| (p.id.0[0], p.upstream)).collect()
    }

    #[test]
    fn given_offices_then_sources_follow_the_office_order_and_only_the_top_rvp_leases() {
        let (mut r, id, now) = offices(4);
        // Nobody holds anything: only hq's RVP (client 1) may use the origin.
        assert_eq!(r.sources(&query(2, id, 4), now).unwrap().granted, vec![]);
        assert_eq!(r.sources(&query(3, id, 4), now).unwrap().granted, vec![]);
        assert_eq!(
            r.sources(&query(1, id, 2), now).unwrap().granted,
            vec![0, 1]
        );
        r.report_have(node(1), id, PieceMap::full(4), now).unwrap();
        r.report_have(node(5), id, PieceMap::full(4), now).unwrap();
        // hq's other client takes from hq's RVP; the VPN client never serves.
        assert_eq!(
            ids(&r.sources(&query(2, id, 0), now).unwrap().peers),
            vec![(1, false)]
        );
        // branch's RVP (client 3) sees hq upstream; client 4 waits for it.
        assert_eq!(
            ids(&r.sources(&query(3, id, 0), now).unwrap().peers),
            vec![(1, true)]
        );
        assert_eq!(
            ids(&r.sources(&query(4, id, 0), now).unwrap().peers),
            vec![]
        );
        r.report_have(node(3), id, PieceMap::full(4), now).unwrap();
        assert_eq!(
            ids(&r.sources(&query(4, id, 0), now).unwrap().peers),
            vec![(3, false)]
        );
        // The VPN client has no RVP: it fetches from hq itself.
        assert_eq!(
            ids(&r.sources(&query(5, id, 0), now).unwrap().peers),
            vec![(1, true)]
        );
    }

    #[test]
    fn given_a_stalled_office_then_its_clients_stop_waiting_for_the_rvp() {
        let (mut r, id, now) = offices(2);
        r.report_have(node(1), id, PieceMap::full(2), now).unwrap();
        assert_eq!(
            ids(&r.sources(&query(4, id, 0), now).unwrap().peers),
            vec![]
        );
        let later = now + timing().rvp_patience + Duration::from_secs(1);
        for n in 1..=5 {
            r.heartbeat(&node(n), later);
        }
        assert_eq!(
            ids(&r.sources(&query(4, id, 0), later).unwrap().peers),
            vec![(1, true)],
            "no progress in branch for longer than the patience"
        );
    }

    #[test]
    fn given_an_office_that_wants_a_content_then_its_rvp_is_told_to_pull_it() {
        let (mut r, id, now) = offices(2);
        let attributes = |free: u64| Attributes {
            free_bytes: free << 30,
            ..Attributes::default()
        };
        assert_eq!(
            r.heartbeat_with(&node(3), attributes(90), ByteCounters::default(), now)
                .unwrap()
                .wanted,
            vec![]
        );
        r.sources(&query(4, id, 0), now).unwrap();
        let info = r
            .heartbeat_with(&node(3), attributes(90), ByteCounters::default(), now)
            .unwrap();
        assert_eq!((info.name.as_str(), info.wanted), ("branch", vec![id]));
        assert!(
            r.heartbeat_with(&node(4), attributes(10), ByteCounters::default(), now)
                .unwrap()
                .wanted
                .is_empty(),
            "not the RVP"
        );
        let hq = r
            .heartbeat_with(&node(1), attributes(90), ByteCounters::default(), now)
            .unwrap();
        assert_eq!(hq.wanted, vec![id], "the office above pulls it too");
        r.report_have(node(3), id, PieceMap::full(2), now).unwrap();
        assert!(
            r.heartbeat_with(&node(3), attributes(90), ByteCounters::default(), now)
                .unwrap()
                .wanted
                .is_empty(),
            "held whole"
        );
    }

    #[test]
    fn given_an_office_that_wants_a_content_again_much_later_then_patience_starts_over() {
        let (mut r, id, now) = offices(2);
        r.report_have(node(1), id, PieceMap::full(2), now).unwrap();
        assert_eq!(
            ids(&r.sources(&query(4, id, 0), now).unwrap().peers),
            vec![]
        );
        let much_later = now + WANTED_TTL + timing().rvp_patience + Duration::from_secs(1);
        for n in 1..=5 {
            r.heartbeat(&node(n), much_later);
        }
        assert_eq!(
            ids(&r.sources(&query(4, id, 0), much_later).unwrap().peers),
            vec![],
            "wanting again is not a stall: client 4 still waits for its RVP"
        );
    }
}
