//! Piece picking and request bookkeeping for one download: a plain state
//! machine that takes `now` as an argument and does no I/O.
//!
//! The transfer actor feeds it what the office knows (which peer holds which
//! pieces, which pieces this node may take from the origin) and the outcome
//! of every request; it answers which requests to send next.
//!
//! Policy:
//! - Pieces a peer holds are taken from peers, **rarest first** (fewest
//!   holders), each from the holder with the fewest requests in flight
//!   (then the best ranked by its office's election order), at most
//!   `per_peer` per peer and `total` overall.
//! - **Source order.** A piece a peer of this node's own office holds is
//!   taken only from such peers (if they are all busy, it waits for them).
//!   Only a piece no office peer holds is taken from an *upstream* peer (in
//!   the office up the tree, across the WAN), and only a piece no peer at
//!   all holds from the origin.
//! - **Rate cap.** Requests to upstream peers take their bytes from a token
//!   bucket shared by every download of the node when the link into its
//!   office has a cap (`wan_rate_mbit`), so its pull stays under it.
//! - A piece no peer holds is taken from the origin only under a lease the
//!   server granted this node, so each piece leaves the origin once. Origins
//!   are tried in their published order (CDN first, then file storage).
//! - A source that sent bytes that failed verification is set aside for the
//!   rest of the transfer. A source that failed otherwise (refused, timed
//!   out, unreachable) rests for `retry_after`, doubled for each failure in
//!   a row up to [`MAX_REST`]; a success ends the run. An origin that fails
//!   [`ORIGIN_GIVE_UP`] times in a row is set aside too, so a dead origin
//!   ends the transfer with an error instead of hanging.
//! - **A deadline on every piece.** A piece whose requests to peers keep
//!   failing for `stuck_after` is *stuck* ([`crate::client::stuck`]): it may be
//!   leased from the origin although peers claim it, so a holder that
//!   never delivers delays a download, never stalls it.
//! - Every request carries an id; an outcome for an unknown id (a request
//!   already written off) is ignored.
//! - A request has two phases: **on the wire** until its bytes arrive, then
//!   **storing** while they are verified and written. Only requests on the
//!   wire count against `per_peer` and `total`, so a source is never idle
//!   while the disk syncs; the piece stays reserved until it is stored, and
//!   at most `total` pieces wait for the disk at once (the memory bound).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use branchline_storage::{NodeId, PieceMap};

use crate::client::stuck::StuckPieces;
use crate::pacing::token_bucket::LinkRate;
use crate::wire::{PeerHolding, UpstreamLink};

/// Longest rest after repeated failures.
pub const MAX_REST: Duration = Duration::from_secs(30);
/// Failures in a row after which an origin is given up for this transfer.
pub const ORIGIN_GIVE_UP: u32 = 6;
/// Requests in a row a peer let go unanswered (timed out, unreachable)
/// before it is reported to the server as not answering.
pub const UNRESPONSIVE_AFTER: u32 = 3;

/// Limits on requests in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Requests in flight to one peer.
    pub per_peer: u32,
    /// Requests in flight in all.
    pub total: u32,
    /// Requests in flight to origins.
    pub origin: u32,
    /// How long a source that failed (other than with bad bytes) rests.
    pub retry_after: Duration,
    /// How long a piece's requests to peers may keep failing before it is
    /// taken from the origin ([`crate::client::stuck`]).
    pub stuck_after: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_peer: 4,
            total: 16,
            origin: 4,
            retry_after: Duration::from_secs(2),
            stuck_after: Duration::from_secs(30),
        }
    }
}

/// Where a request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// Another client.
    Peer(NodeId, SocketAddr),
    /// The origin at this index of the content's origin list.
    Origin(usize),
}

/// A request to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// Its id, to match the outcome.
    pub id: u64,
    /// The piece.
    pub index: u32,
    /// Where from.
    pub source: Source,
    /// The source is an upstream peer (across the WAN, background
    /// protocol).
    pub upstream: bool,
}

/// How a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The bytes failed verification: the source is set aside.
    BadData,
    /// Refused (busy, not held): the source rests a while.
    Unavailable,
    /// No answer (timed out, unreachable): the source rests a while, and a
    /// peer that does this [`UNRESPONSIVE_AFTER`] times in a row is
    /// reported as not answering.
    NoAnswer,
}

/// What the picker did with an outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Counted.
    Applied,
    /// The id was unknown (the request had been written off).
    Stale,
}

#[derive(Debug)]
struct PeerState {
    addr: SocketAddr,
    upstream: bool,
    rank: u32,
    unanswered: u32,
    have: PieceMap,
    in_flight: u32,
    rest: Rest,
}

#[derive(Debug, Default, Clone, Copy)]
struct OriginState {
    set_aside: bool,
    rest: Rest,
}

/// A request not yet settled.
#[derive(Debug, Clone, Copy)]
struct Flight {
    index: u32,
    source: Source,
    /// Still waiting for the bytes (else they are being stored).
    on_wire: bool,
}

/// The picker for one content.
#[derive(Debug)]
pub struct Picker {
    limits: Limits,
    have: PieceMap,
    peers: BTreeMap<NodeId, PeerState>,
    set_aside_peers: BTreeSet<NodeId>,
    origins: Vec<OriginState>,
    in_flight: HashMap<u64, Flight>,
    pieces_in_flight: BTreeSet<u32>,
    granted: BTreeSet<u32>,
    leased_elsewhere: PieceMap,
    to_release: BTreeSet<u32>,
    next_id: u64,
    link_rate: LinkRate,
    piece_bytes: u64,
    upstream_blocked: Option<Instant>,
    silent: BTreeSet<NodeId>,
    to_report: Vec<NodeId>,
    stuck: StuckPieces,
}

impl Picker {
    /// A picker for a content of which `have` is held, with `origins` origin
    /// URLs.
    pub fn new(have: PieceMap, origins: usize, limits: Limits) -> Self {
        let len = have.len();
        Picker {
            limits,
            have,
            peers: BTreeMap::new(),
            set_aside_peers: BTreeSet::new(),
            origins: vec![OriginState::default(); origins],
            in_flight: HashMap::new(),
            pieces_in_flight: BTreeSet::new(),
            granted: BTreeSet::new(),
            leased_elsewhere: PieceMap::new(len),
            to_release: BTreeSet::new(),
            next_id: 1,
            link_rate: LinkRate::default(),
            piece_bytes: 0,
            upstream_blocked: None,
            silent: BTreeSet::new(),
            to_report: Vec::new(),
            stuck: StuckPieces::new(limits.stuck_after),
        }
    }

    /// Draws requests to upstream peers from `link`, the cap shared by
    /// every download of this node.
    pub fn share_link_rate(&mut self, link: LinkRate) {
        self.link_rate = link;
    }

    /// Takes the settings of the link to upstream peers (`None`: none are
    /// listed, no cap): see [`LinkRate::set`]. Each request counts as
    /// `piece_bytes`.
    pub fn set_upstream_link(&mut self, link: Option<&UpstreamLink>, piece_bytes: u64) {
        self.piece_bytes = piece_bytes;
        self.link_rate.set(link, piece_bytes);
    }

    /// What is held.
    pub fn have(&self) -> &PieceMap {
        &self.have
    }

    /// True when every piece is held.
    pub fn is_complete(&self) -> bool {
        self.have.is_complete()
    }

    /// Requests not yet settled: on the wire or being stored.
    pub fn in_flight(&self) -> u32 {
        u32::try_from(self.in_flight.len()).unwrap_or(u32::MAX)
    }

    fn count_flights(&self, which: impl Fn(&Flight) -> bool) -> u32 {
        let n = self.in_flight.values().filter(|f| which(f)).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// No room for another request: `total` on the wire, or `total` pieces
    /// waiting for the disk.
    fn full(&self) -> bool {
        self.count_flights(|f| f.on_wire) >= self.limits.total
            || self.count_flights(|f| !f.on_wire) >= self.limits.total
    }

    /// Peers known as sources (not set aside).
    pub fn source_count(&self) -> u32 {
        u32::try_from(self.peers.len()).unwrap_or(u32::MAX)
    }

    /// Takes in what the server (through the office) says: who holds what,
    /// what others are fetching from the origin, and this node's leases.
    /// Peers set aside stay set aside. A peer that vanished (it left, or the
    /// server stopped listing it) is forgotten with the requests sent to it:
    /// they are written off, so their pieces are asked of someone else at
    /// once instead of waiting out a timeout on a peer that may be dead.
    pub fn update_sources<'a>(
        &mut self,
        peers: impl IntoIterator<Item = &'a PeerHolding>,
        leased_elsewhere: PieceMap,
        granted: &[u32],
    ) {
        let len = self.have.len();
        let mut next = BTreeMap::new();
        for peer in peers {
            if self.set_aside_peers.contains(&peer.id) || peer.have.len() != len {
                continue;
            }
            let old = self.peers.remove(&peer.id);
            next.insert(
                peer.id,
                PeerState {
                    addr: peer.addr,
                    upstream: peer.upstream,
                    rank: peer.rank,
                    unanswered: old.as_ref().map_or(0, |p| p.unanswered),
                    have: peer.have.clone(),
                    in_flight: old.as_ref().map_or(0, |p| p.in_flight),
                    rest: old.map(|p| p.rest).unwrap_or_default(),
                },
            );
        }
        let vanished: Vec<NodeId> = std::mem::take(&mut self.peers).into_keys().collect();
        self.peers = next;
        for gone in vanished {
            self.write_off(&gone);
        }
        if leased_elsewhere.len() == len {
            self.leased_elsewhere = leased_elsewhere;
        }
        self.granted = granted
            .iter()
            .copied()
            .filter(|&i| i < len && !self.have.get(i))
            .collect();
    }

    /// Holders of `index` that may take a request now: peers of this
    /// office if any of them holds it, else upstream peers.
    fn usable_holders(
        &self,
        index: u32,
        now: Instant,
    ) -> impl Iterator<Item = (&NodeId, &PeerState)> {
        let upstream = !self
            .peers
            .values()
            .any(|p| !p.upstream && p.have.get(index));
        self.peers.iter().filter(move |(_, p)| {
            p.upstream == upstream
                && p.have.get(index)
                && p.in_flight < self.limits.per_peer
                && !p.rest.resting(now)
        })
    }

    fn holders(&self, index: u32) -> usize {
        self.peers.values().filter(|p| p.have.get(index)).count()
    }

    fn origin_in_flight(&self) -> u32 {
        self.count_flights(|f| f.on_wire && matches!(f.source, Source::Origin(_)))
    }

    fn wanted(&self) -> impl Iterator<Item = u32> + '_ {
        self.have
            .iter_missing()
            .filter(|i| !self.pieces_in_flight.contains(i))
    }

    /// The requests to send now; they are counted as in flight.
    pub fn next_requests(&mut self, now: Instant) -> Vec<Request> {
        let mut out = Vec::new();
        // Rarest first among pieces some peer holds.
        // A stuck piece leased to this node goes to the origin instead.
        let mut candidates: Vec<(usize, u32)> = self
            .wanted()
            .filter(|i| !(self.granted.contains(i) && self.stuck.is_stuck(*i, now)))
            .map(|i| (self.holders(i), i))
            .filter(|&(holders, _)| holders > 0)
            .collect();
        candidates.sort_unstable();
        for (_, index) in candidates {
            if self.full() {
                return out;
            }
            let best = self
                .usable_holders(index, now)
                .min_by_key(|(id, p)| (p.in_flight, p.rank, spread(id, index)))
                .map(|(id, p)| (*id, p.addr, p.upstream));
            if let Some((id, addr, upstream)) = best {
                if upstream && !self.take_upstream(now) {
                    continue;
                }
                out.push(self.start(index, Source::Peer(id, addr)));
            }
        }
        // Leased pieces from the origin, in order of the origin list.
        let granted: Vec<u32> = self
            .granted
            .iter()
            .copied()
            .filter(|i| !self.pieces_in_flight.contains(i))
            .collect();
        for index in granted {
            if self.full() || self.origin_in_flight() >= self.limits.origin {
                break;
            }
            if self.holders(index) > 0 && !self.stuck.is_stuck(index, now) {
                continue; // a peer has it now; the lease goes back
            }
            match self.usable_origin(now) {
                Some(origin) => out.push(self.start(index, Source::Origin(origin))),
                None => break,
            }
        }
        out
    }

    /// Takes a piece's worth from the upstream bucket (if there is a cap,
    /// and unless the link is paused as busy); remembers when to ask again.
    fn take_upstream(&mut self, now: Instant) -> bool {
        match self.link_rate.try_take(self.piece_bytes, now) {
            Ok(()) => true,
            Err(ready) => {
                self.upstream_blocked = Some(ready);
                false
            }
        }
    }

    fn usable_origin(&self, now: Instant) -> Option<usize> {
        self.origins
            .iter()
            .position(|o| !o.set_aside && !o.rest.resting(now))
    }

    fn start(&mut self, index: u32, source: Source) -> Request {
        let id = self.next_id;
        self.next_id += 1;
        self.in_flight.insert(
            id,
            Flight {
                index,
                source,
                on_wire: true,
            },
        );
        self.pieces_in_flight.insert(index);
        let mut upstream = false;
        if let Source::Peer(peer, _) = source
            && let Some(p) = self.peers.get_mut(&peer)
        {
            p.in_flight += 1;
            upstream = p.upstream;
        }
        Request {
            id,
            index,
            source,
            upstream,
        }
    }

    /// Forgets the requests on the wire to `peer`; their outcomes, if they
    /// ever come, are stale. Pieces it already delivered are still stored.
    fn write_off(&mut self, peer: &NodeId) {
        let ids: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.on_wire && matches!(f.source, Source::Peer(p, _) if p == *peer))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.finish(id);
        }
    }

    fn finish(&mut self, id: u64) -> Option<(u32, Source)> {
        let flight = self.in_flight.remove(&id)?;
        self.pieces_in_flight.remove(&flight.index);
        if flight.on_wire {
            self.off_wire(flight.source);
        }
        Some((flight.index, flight.source))
    }

    fn off_wire(&mut self, source: Source) {
        if let Source::Peer(peer, _) = source
            && let Some(p) = self.peers.get_mut(&peer)
        {
            p.in_flight = p.in_flight.saturating_sub(1);
        }
    }

    /// A request's bytes arrived and go to be verified and stored: its
    /// source may take another request, and the piece stays reserved until
    /// [`Picker::on_stored`] or [`Picker::on_failed`].
    pub fn on_received(&mut self, id: u64) -> Outcome {
        let Some(flight) = self.in_flight.get_mut(&id).filter(|f| f.on_wire) else {
            return Outcome::Stale;
        };
        flight.on_wire = false;
        let source = flight.source;
        self.off_wire(source);
        Outcome::Applied
    }

    /// A request delivered a verified, stored piece. A request already
    /// written off still delivered it: the piece counts as held.
    pub fn on_stored(&mut self, request: &Request) -> Outcome {
        let Some((index, source)) = self.finish(request.id) else {
            if request.index < self.have.len() {
                self.have.set(request.index);
                self.granted.remove(&request.index);
            }
            return Outcome::Stale;
        };
        match source {
            Source::Peer(peer, _) => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.rest.succeeded();
                    p.unanswered = 0;
                }
            }
            Source::Origin(i) => self.origins[i].rest.succeeded(),
        }
        self.have.set(index);
        self.granted.remove(&index);
        self.stuck.stored(index);
        Outcome::Applied
    }

    /// A peer is banned: no request goes to it again.
    pub fn set_aside(&mut self, peer: NodeId) {
        self.set_aside_peers.insert(peer);
        if let Some(p) = self.peers.get_mut(&peer) {
            p.have = PieceMap::new(self.have.len());
        }
    }

    /// A request failed.
    pub fn on_failed(&mut self, id: u64, failure: Failure, now: Instant) -> Outcome {
        let Some((index, source)) = self.finish(id) else {
            return Outcome::Stale;
        };
        if let Source::Peer(..) = source {
            self.stuck.failed(index, now);
        }
        match (source, failure) {
            (Source::Peer(peer, _), Failure::BadData) => {
                // A strike: the peer rests, and is not asked for this piece
                // again until an answer lists it once more. Banning it is
                // the office's call (`set_aside`).
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.rest.failed(now, self.limits.retry_after);
                    p.have.clear(index);
                }
            }
            (Source::Peer(peer, _), Failure::Unavailable) => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.rest.failed(now, self.limits.retry_after);
                    p.unanswered = 0;
                }
            }
            (Source::Peer(peer, _), Failure::NoAnswer) => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.rest.failed(now, self.limits.retry_after);
                    p.unanswered += 1;
                    if p.unanswered >= UNRESPONSIVE_AFTER && self.silent.insert(peer) {
                        self.to_report.push(peer);
                    }
                }
            }
            (Source::Origin(i), Failure::BadData) => self.origins[i].set_aside = true,
            (Source::Origin(i), Failure::Unavailable | Failure::NoAnswer) => {
                let origin = &mut self.origins[i];
                origin.rest.failed(now, self.limits.retry_after);
                origin.set_aside |= origin.rest.failures >= ORIGIN_GIVE_UP;
            }
        }
        if self.origins_exhausted() {
            let granted = std::mem::take(&mut self.granted);
            self.to_release.extend(granted);
        }
        Outcome::Applied
    }

    /// Peers that stopped answering, to report to the server (each once
    /// per transfer).
    pub fn take_unresponsive(&mut self) -> Vec<NodeId> {
        std::mem::take(&mut self.to_report)
    }

    /// The earliest time a resting source wakes, so the actor can come back.
    pub fn next_wake(&self, now: Instant) -> Option<Instant> {
        let peers = self.peers.values().filter_map(|p| p.rest.until);
        let origins = self.origins.iter().filter_map(|o| o.rest.until);
        peers
            .chain(origins)
            .chain(self.upstream_blocked)
            .chain(self.stuck.next_deadline(now))
            .filter(|&t| t > now)
            .min()
    }
}

/// A cheap per-(peer, piece) tie-breaker, so equal peers share the load
/// instead of the lowest id taking every request.
fn spread(id: &NodeId, index: u32) -> u32 {
    let mut h = u32::from_le_bytes([id.0[0], id.0[1], id.0[2], id.0[3]]);
    h ^= index.wrapping_mul(0x9E37_79B9);
    h.rotate_left(13).wrapping_mul(0x85EB_CA6B)
}

mod leases;
mod rest;

use rest::Rest;

#[cfg(test)]
mod tests;
