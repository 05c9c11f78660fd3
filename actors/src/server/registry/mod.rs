//! One office's registry as a plain state machine: the office's clients
//! and their heartbeats, who of them holds which pieces, and the office's
//! origin leases. It takes `now` as an argument and does no I/O; the
//! office's actor drives it, persists what it reports as changed, and
//! carries what needs the offices above (their peers, "this office wants
//! X") actor to actor.
//!
//! **Origin leases** are the office's fallback decision: which of its
//! clients may take which piece from the origin. A client asks for up to N
//! pieces that nobody in its office holds, and the office grants pieces that
//! nobody holds and nobody else of the office is fetching. A lease ends when
//! anyone reports the piece, its holder gives it back, it expires
//! (`lease_ttl`) or its holder leaves.
//!
//! Every change to a content's holdings or leases, or to the peers of the
//! office above that it was told of, bumps the content's version, which
//! wakes long-polling `Sources` queries.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use branchline_storage::{ClientRecord, ContentId, NodeId, PieceMap};

use crate::server::answer_delta::{Answered, Roster};
use crate::server::catalogue::Catalogue;
use crate::server::election::Attributes;
use crate::server::offices::OfficeBook;
use crate::server::seats::Seats;
use crate::topology::{LinkBelow, Office};
use crate::wire::{BadPiece, ByteCounters, OfficeInfo, Registration};
use content::{Content, Lease};

mod content;
mod moves;
mod reports;
mod sources;
#[cfg(test)]
mod tests;
mod views;

pub use moves::Moving;
pub use reports::Reported;
pub use sources::Upstream;
pub use views::OfficeReport;

/// Most peers one sources answer lists: enough to keep every piece that
/// anyone holds reachable and the asker's requests spread, while the answer
/// stays small however many clients hold the content.
pub const MAX_PEERS_PER_ANSWER: usize = 64;

/// How long after the last question about a content an office still wants
/// it (its RVP is told to pull it).
pub const WANTED_TTL: Duration = Duration::from_secs(60);

/// How often at most an office tells the offices above that it still
/// wants a content.
const TELL_ABOVE_EVERY: Duration = Duration::from_secs(5);

/// How long the record of a sources answer is kept for the next answer to
/// be a delta against: well beyond a long-poll, so only askers that
/// stopped asking (their download finished) lose it.
const ANSWERED_TTL: Duration = Duration::from_secs(120);

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
}

/// One office's registry.
#[derive(Debug)]
pub struct Registry {
    timing: RegistryTiming,
    clients: HashMap<NodeId, Client>,
    catalogue: Arc<Catalogue>,
    contents: HashMap<ContentId, Content>,
    dirty_clients: HashSet<NodeId>,
    dirty_holdings: HashSet<(ContentId, NodeId)>,
    removed: HashSet<NodeId>,
    book: OfficeBook,
    /// Contents this office's clients (or an office below) asked about,
    /// and when last.
    wanted: HashMap<ContentId, Instant>,
    /// When the offices above were last told that this one wants a content.
    told_above: HashMap<ContentId, Instant>,
    /// When the office last gained pieces of a content it wants.
    progress: HashMap<ContentId, Instant>,
    /// Clients that stopped waiting for their RVP (logged once each).
    fallbacks: HashSet<(ContentId, NodeId)>,
    /// Pieces leased from the origin, by reason.
    origin_use: BTreeMap<&'static str, u64>,
    /// The last sources answer to each asker about each content, which
    /// the next answer is a delta against.
    answered: HashMap<(NodeId, ContentId), Answered>,
    /// The members as answers list them, shared by the records of answers
    /// made while it holds.
    roster: Arc<Roster>,
    /// Peers banned for bad bytes by clients of this office: who reported,
    /// and the evidence. Kept until the server restarts.
    bans: BTreeMap<NodeId, (NodeId, Vec<BadPiece>)>,
    seats: Arc<Seats>,
}

impl Registry {
    /// The empty registry of the office `spec`.
    pub fn new(
        timing: RegistryTiming,
        spec: Office,
        links_below: Vec<LinkBelow>,
        catalogue: Arc<Catalogue>,
        seats: Arc<Seats>,
    ) -> Self {
        Registry {
            timing,
            clients: HashMap::new(),
            catalogue,
            contents: HashMap::new(),
            dirty_clients: HashSet::new(),
            dirty_holdings: HashSet::new(),
            removed: HashSet::new(),
            book: OfficeBook::new(spec, links_below),
            wanted: HashMap::new(),
            told_above: HashMap::new(),
            progress: HashMap::new(),
            fallbacks: HashSet::new(),
            origin_use: BTreeMap::new(),
            answered: HashMap::new(),
            roster: Arc::default(),
            bans: BTreeMap::new(),
            seats,
        }
    }

    /// How many clients the office has.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// The office's name.
    pub fn office(&self) -> &str {
        self.book.name()
    }

    /// The office's members and election.
    pub fn book(&self) -> &OfficeBook {
        &self.book
    }

    /// Reloads the office's clients and holdings as the store kept them.
    /// Clients get a full timeout from `now` to send a heartbeat before
    /// they expire. A client that registered again while the store was
    /// read is newer than what the store kept: it is left as it is.
    pub fn restore(
        &mut self,
        clients: Vec<ClientRecord>,
        holdings: Vec<(ContentId, NodeId, PieceMap)>,
        now: Instant,
    ) {
        let mut restored = HashSet::new();
        for record in clients {
            if self.clients.contains_key(&record.id) {
                continue;
            }
            self.seats.take_anyway();
            restored.insert(record.id);
            self.book.join(record.id, &record.name, record.addr.ip());
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
            if restored.contains(&client)
                && let Some(c) = self.content_mut(&content)
                && have.len() == c.record.manifest.piece_count()
            {
                c.put_holder(client, have);
            }
        }
    }

    /// Forgets every client without giving their seats back or marking
    /// them removed: the office is rebuilt from the store next.
    pub fn forget_all(&mut self) {
        for _ in 0..self.clients.len() {
            self.seats.give_back();
        }
        let (timing, catalogue, seats) = (self.timing, self.catalogue.clone(), self.seats.clone());
        let (spec, links) = (self.book.spec().clone(), self.book.links_below().to_vec());
        *self = Registry::new(timing, spec, links, catalogue, seats);
    }

    /// The published contents as the directory says now: purged ones are
    /// forgotten with their holdings and leases.
    pub fn set_catalogue(&mut self, catalogue: Arc<Catalogue>) {
        self.contents.retain(|id, c| match catalogue.get(id) {
            Some(published) => {
                c.record = published.record.clone();
                true
            }
            None => false,
        });
        self.answered
            .retain(|(_, content), _| catalogue.get(content).is_some());
        self.dirty_holdings
            .retain(|(content, _)| catalogue.get(content).is_some());
        self.progress.retain(|id, _| catalogue.get(id).is_some());
        self.wanted.retain(|id, _| catalogue.get(id).is_some());
        self.catalogue = catalogue;
    }

    /// The office's state of a published content, made when first needed.
    fn content_mut(&mut self, id: &ContentId) -> Option<&mut Content> {
        let published = self.catalogue.get(id)?;
        Some(
            self.contents
                .entry(*id)
                .or_insert_with(|| Content::new(published.record.clone(), published.confidential)),
        )
    }

    /// The current version of a content's holdings and leases here.
    pub fn version(&self, id: &ContentId) -> Option<u64> {
        self.contents.get(id).map(|c| c.version)
    }

    /// Registers a client with what it holds (unknown contents and maps of
    /// the wrong length are skipped). `seen` is the address the server
    /// sees the client's packets come from: its office follows that, not
    /// the address it advertises (the caller logs when they differ). A
    /// client new to the office is refused once every seat is taken.
    pub fn register(
        &mut self,
        reg: Registration,
        seen: IpAddr,
        now_ms: u64,
        now: Instant,
    ) -> Result<(), RegistryError> {
        if !self.clients.contains_key(&reg.id) && !self.seats.take() {
            return Err(RegistryError::Full(self.seats.max()));
        }
        self.book.join(reg.id, &reg.name, seen);
        self.book.set_attributes(&reg.id, reg.attributes);
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
        self.book.set_attributes(id, attributes);
        let mut info = self.office_info(id, now)?;
        if info.rvps.contains(id) {
            info.wanted = self.wanted_from_rvp(id, now);
        }
        Some(info)
    }

    /// Contents the office wanted within [`WANTED_TTL`] that its RVP `id`
    /// does not hold whole: what the RVP should pull into the office.
    fn wanted_from_rvp(&mut self, id: &NodeId, now: Instant) -> Vec<ContentId> {
        self.wanted
            .retain(|_, at| now.duration_since(*at) < WANTED_TTL);
        self.wanted
            .keys()
            .filter(|content| {
                self.catalogue.get(content).is_some()
                    && !self
                        .contents
                        .get(content)
                        .and_then(|c| c.holders.get(id))
                        .is_some_and(PieceMap::is_complete)
            })
            .copied()
            .collect()
    }

    /// The office wants `content` (one of its clients, or an office below,
    /// asked about it). True when the offices above should be told too:
    /// each RVP on the way up pulls it, so it comes down the tree link by
    /// link.
    pub fn note_wanted(&mut self, content: ContentId, now: Instant) -> bool {
        self.wanted.insert(content, now);
        let told = self.told_above.get(&content);
        if told.is_some_and(|at| now.duration_since(*at) < TELL_ABOVE_EVERY) {
            return false;
        }
        self.told_above.insert(content, now);
        self.book.spec().parent.is_some()
    }

    /// A registered client's office, with its RVPs and the number of the
    /// last purge.
    pub fn office_info(&mut self, id: &NodeId, now: Instant) -> Option<OfficeInfo> {
        let mut info = self.book.info(id, now)?;
        info.purge_seq = self.catalogue.purge_seq();
        Some(info)
    }

    /// The office as a new topology describes it; every member is elected
    /// again.
    pub fn set_spec(&mut self, spec: Office, links_below: Vec<LinkBelow>) {
        self.book.set_spec(spec, links_below);
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
        if self.set_have(id, content, have)? > 0 {
            self.progress.insert(content, now);
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
            .content_mut(&content)
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
            if self.clients.remove(id).is_some() {
                self.seats.give_back();
            }
            self.book.leave(id);
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
        }
    }
}
