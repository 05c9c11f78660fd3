//! One office's members and its RVPs: who is in the office, what each
//! reported about itself, who stopped answering, and the election. A plain
//! state machine (takes `now`, no I/O) owned by that office's registry.
//!
//! Which office a client is in is the directory's business: it resolves the
//! address and sends the client here. Elections are computed on demand and
//! cached for [`ELECTION_TTL`]; anyone joining or leaving marks the cache
//! stale, so an RVP that leaves is replaced on the next question. A sitting
//! RVP wins ties, so the seat does not flap while attributes wobble.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use branchline_storage::{NodeId, PieceMap};

use crate::server::election::{self, Attributes, Candidate};
use crate::topology::{LinkBelow, Office};
use crate::wire::{OfficeInfo, UpstreamLink};

/// How long a peer reported as not answering is left out of elections and
/// sources answers.
pub const SUSPECT_FOR: Duration = Duration::from_secs(60);
/// Distinct clients that must report a peer before it is left out (fewer
/// when fewer could: the office's other members and the offices below
/// that take from it).
pub const REPORTS_NEEDED: usize = 2;

/// How long an office's election result is reused while its members stay
/// (changed attributes count after this long; joins and leaves at once).
pub const ELECTION_TTL: Duration = Duration::from_secs(600);

/// A member of the office.
#[derive(Clone, Debug)]
pub struct Member {
    /// Its name.
    pub name: String,
    /// The address its office was resolved from.
    pub addr: IpAddr,
    /// What it last reported about itself.
    pub attributes: Option<Attributes>,
}

/// One RVP's share of the pieces its office takes from the office above
/// ([`Share::among`]): piece `i` is its own when `i % of == nth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    /// Its place among the office's RVPs, best ranked first.
    pub nth: u32,
    /// How many RVPs the office has.
    pub of: u32,
}

impl Share {
    /// `id`'s share among `rvps`, the office's RVPs that serve now: each
    /// takes from above only the pieces of its share, and the others from
    /// its fellow RVPs, so every piece crosses the link once. The RVPs are
    /// taken in node id order, so a re-election that keeps them keeps
    /// their shares. `None` if `id` is not among them or is alone.
    pub fn among(rvps: &[NodeId], id: &NodeId) -> Option<Share> {
        let mut sorted: Vec<&NodeId> = rvps.iter().collect();
        sorted.sort_unstable();
        sorted.dedup();
        let of = u32::try_from(sorted.len()).ok().filter(|&n| n > 1)?;
        let nth = sorted.iter().position(|r| *r == id)?;
        Some(Share {
            nth: u32::try_from(nth).ok()?,
            of,
        })
    }

    /// Of the pieces in `have`, those of this share.
    pub fn of_map(&self, have: &PieceMap) -> PieceMap {
        let mut mine = PieceMap::new(have.len());
        for i in have.iter_set().filter(|i| i % self.of == self.nth) {
            mine.set(i);
        }
        mine
    }
}

/// Where one client may take a content's pieces from, by the source
/// order: its own office, then (only if it crosses the WAN for its office)
/// the nearest office up the tree with clients that serve, or the origin
/// when there is none above it or its office may use the origin directly.
///
/// [`OfficeBook::plan`] makes it without the office above, which only the
/// offices up the tree can say; [`SourcePlan::settle`] completes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourcePlan {
    /// The client's office.
    pub office: String,
    /// Whether peers of its own office serve (not in a VPN office).
    pub office_serves: bool,
    /// The office up the tree it fetches from, if it crosses the WAN.
    pub upstream: Option<String>,
    /// Whether it may fetch from the origin (under leases).
    pub origin: bool,
    /// Why it may: `top office`, `origin_direct`, or `nothing above has
    /// clients`.
    pub origin_reason: Option<&'static str>,
    /// The link into its office: its cap (`wan_rate_mbit`) and settings.
    pub link: UpstreamLink,
    /// Why it crosses the WAN: `rvp`, `no-rvp`, `fallback`; `None` if it
    /// waits for its office's RVP.
    pub crossing: Option<&'static str>,
    /// The office made no progress on the content for longer than the RVP
    /// patience: its RVPs take anything from above, not only their shares.
    pub stalled: bool,
    /// Whether the offices above must be asked for their peers: it crosses
    /// the WAN, its office has a parent and no breakout of its own.
    pub asks_above: bool,
    /// Why the origin is allowed if nothing above has clients.
    why_origin: &'static str,
}

impl SourcePlan {
    /// Completes the plan with the nearest office above that has clients
    /// that serve (`None`: there is none, or nobody was asked).
    pub fn settle(&mut self, above: Option<String>) {
        self.upstream = self.crossing.and(above);
        self.origin = self.crossing.is_some() && self.upstream.is_none();
        self.origin_reason = self.origin.then_some(self.why_origin);
    }
}

#[derive(Debug)]
struct Election {
    at: Instant,
    /// Someone joined or left since: elect again, the sitting RVPs
    /// winning ties.
    stale: bool,
    rvps: Vec<NodeId>,
    /// Each member's place in the election order (0 is best).
    rank: HashMap<NodeId, u32>,
}

/// One office's members and election.
#[derive(Debug)]
pub struct OfficeBook {
    spec: Office,
    /// The offices below and their links (see
    /// [`crate::topology::Topology::links_below`]); every heartbeat
    /// answer carries it.
    links_below: Vec<LinkBelow>,
    members: HashMap<NodeId, Member>,
    election: Option<Election>,
    /// Members reported as not answering: who reported, and when last.
    reports: HashMap<NodeId, (BTreeSet<NodeId>, Instant)>,
    /// Offices below that take pieces from this one now: their clients
    /// may report its members too.
    takers_below: usize,
}

impl OfficeBook {
    /// The book of the office `spec`, with no members.
    pub fn new(spec: Office, links_below: Vec<LinkBelow>) -> Self {
        OfficeBook {
            spec,
            links_below,
            members: HashMap::new(),
            election: None,
            reports: HashMap::new(),
            takers_below: 0,
        }
    }

    /// The office's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The office as the topology describes it.
    pub fn spec(&self) -> &Office {
        &self.spec
    }

    /// The offices below and their links.
    pub fn links_below(&self) -> &[LinkBelow] {
        &self.links_below
    }

    /// The office as a new topology describes it: its members are elected
    /// again (its RVP count or preferences may have changed).
    pub fn set_spec(&mut self, spec: Office, links_below: Vec<LinkBelow>) {
        self.spec = spec;
        self.links_below = links_below;
        self.mark_stale();
    }

    /// Puts `id` (named `name`, at `addr`) in the office.
    pub fn join(&mut self, id: NodeId, name: &str, addr: IpAddr) {
        let attributes = self.members.get(&id).and_then(|m| m.attributes);
        self.mark_stale();
        self.members.insert(
            id,
            Member {
                name: name.to_owned(),
                addr,
                attributes,
            },
        );
    }

    /// Takes `id` out of the office; what it was.
    pub fn leave(&mut self, id: &NodeId) -> Option<Member> {
        let member = self.members.remove(id)?;
        self.mark_stale();
        Some(member)
    }

    /// Records what `id` reports about itself.
    pub fn set_attributes(&mut self, id: &NodeId, attributes: Attributes) {
        if let Some(member) = self.members.get_mut(id) {
            member.attributes = Some(attributes);
        }
    }

    /// `reporter` (of this office or one below) says `peer`, a member,
    /// stopped answering. Once enough distinct clients said so, the peer is
    /// left out of elections (the office elects again at once) and of
    /// sources answers for [`SUSPECT_FOR`]. True if this report made it a
    /// suspect.
    pub fn report_unresponsive(&mut self, peer: NodeId, reporter: NodeId, now: Instant) -> bool {
        if peer == reporter || !self.members.contains_key(&peer) {
            return false;
        }
        let was = self.is_suspect(&peer, now);
        let entry = self
            .reports
            .entry(peer)
            .or_insert_with(|| (BTreeSet::new(), now));
        if now.duration_since(entry.1) >= SUSPECT_FOR {
            entry.0.clear();
        }
        entry.0.insert(reporter);
        entry.1 = now;
        let suspect = self.is_suspect(&peer, now);
        if suspect && !was {
            tracing::warn!(%peer, office = %self.spec.name, "peer reported as not answering; left out of elections and answers");
            self.mark_stale();
        }
        suspect && !was
    }

    /// How many offices below take pieces from this one now.
    pub fn set_takers_below(&mut self, offices: usize) {
        self.takers_below = offices;
    }

    /// Whether `peer` is left out because clients reported it silent:
    /// [`REPORTS_NEEDED`] distinct reporters, or all who could report
    /// when fewer could (the other members, and an office below for each
    /// that takes from this one). So one office below whose own link
    /// broke cannot sideline an office's only client for every office
    /// else, and the only one who could notice is believed.
    pub fn is_suspect(&self, peer: &NodeId, now: Instant) -> bool {
        let could_report = self.members.len().saturating_sub(1) + self.takers_below;
        let needed = REPORTS_NEEDED.min(could_report).max(1);
        self.reports
            .get(peer)
            .is_some_and(|(who, at)| now.duration_since(*at) < SUSPECT_FOR && who.len() >= needed)
    }

    /// Whether `id` is a member not reported silent: a peer others can
    /// take pieces from.
    pub fn serves(&self, id: &NodeId, now: Instant) -> bool {
        self.members.contains_key(id) && !self.is_suspect(id, now)
    }

    /// Whether offices below may take pieces from this one: its type
    /// serves and it has members.
    pub fn serves_below(&self) -> bool {
        self.spec.kind.serves() && !self.members.is_empty()
    }

    /// What `id` last reported about itself.
    pub fn attributes(&self, id: &NodeId) -> Option<Attributes> {
        self.members.get(id).and_then(|m| m.attributes)
    }

    /// The member `id`.
    pub fn member(&self, id: &NodeId) -> Option<&Member> {
        self.members.get(id)
    }

    /// The members.
    pub fn members(&self) -> impl Iterator<Item = (&NodeId, &Member)> {
        self.members.iter()
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether it has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// What member `id` is told about its office: name, type and RVPs.
    pub fn info(&mut self, id: &NodeId, now: Instant) -> Option<OfficeInfo> {
        if !self.members.contains_key(id) {
            return None;
        }
        let rvps = self.rvps(now);
        Some(OfficeInfo {
            purge_seq: 0,
            links_below: self.links_below.clone(),
            name: self.spec.name.clone(),
            kind: self.spec.kind,
            rvps,
            wanted: Vec::new(),
            revocations: None,
        })
    }

    /// Where member `id` may take pieces from now, but for the office
    /// above (see [`SourcePlan::settle`]). `stalled` says that the office
    /// has made no progress on the content for too long, so the client
    /// crosses the WAN itself instead of waiting for the RVP.
    pub fn plan(&mut self, id: &NodeId, stalled: bool, now: Instant) -> Option<SourcePlan> {
        if !self.members.contains_key(id) {
            return None;
        }
        let rvps = self.rvps(now);
        let crossing = if rvps.contains(id) {
            Some("rvp")
        } else if rvps.is_empty() {
            Some("no-rvp")
        } else if stalled {
            Some("fallback")
        } else {
            None
        };
        let spec = &self.spec;
        let why_origin = if spec.origin_direct {
            "origin_direct"
        } else if spec.parent.is_none() {
            "top office"
        } else {
            "nothing above has clients"
        };
        let mut plan = SourcePlan {
            office: spec.name.clone(),
            office_serves: spec.kind.serves(),
            upstream: None,
            origin: false,
            origin_reason: None,
            link: UpstreamLink {
                max_rate_mbit: spec.wan_rate_mbit,
                settings: spec.link,
            },
            crossing,
            stalled,
            asks_above: crossing.is_some() && !spec.origin_direct && spec.parent.is_some(),
            why_origin,
        };
        plan.settle(None);
        Some(plan)
    }

    /// The RVPs, electing them again if the cache is stale. VPN offices
    /// elect none: their clients never serve.
    pub fn rvps(&mut self, now: Instant) -> Vec<NodeId> {
        self.elect(now).rvps.clone()
    }

    /// `id`'s place in the election order (0 is best), as of the last
    /// election (`rvps` brings it up to date).
    pub fn rank_of(&self, id: &NodeId) -> Option<u32> {
        self.election.as_ref()?.rank.get(id).copied()
    }

    fn mark_stale(&mut self) {
        if let Some(election) = &mut self.election {
            election.stale = true;
        }
    }

    fn elect(&mut self, now: Instant) -> &Election {
        let sitting = match self.election.take() {
            Some(e) if !e.stale && now.duration_since(e.at) < ELECTION_TTL => {
                return self.election.insert(e);
            }
            Some(e) => e.rvps,
            None => Vec::new(),
        };
        let spec = &self.spec;
        let candidates: Vec<Candidate> = self
            .members
            .iter()
            .filter(|(id, _)| !self.is_suspect(id, now))
            .filter_map(|(id, member)| {
                member.attributes.map(|attributes| Candidate {
                    id: *id,
                    attributes,
                    preferred_by_office: spec.preferred.contains(&member.name),
                    incumbent: sitting.contains(id),
                })
            })
            .collect();
        let count = if spec.kind.serves() {
            usize::from(spec.rvp_count)
        } else {
            0
        };
        let ranked = election::rank(&candidates);
        self.election.insert(Election {
            at: now,
            stale: false,
            rvps: ranked.iter().take(count).copied().collect(),
            rank: (0u32..).zip(ranked).map(|(i, id)| (id, i)).collect(),
        })
    }
}

#[cfg(test)]
mod tests;
