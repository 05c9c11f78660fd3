//! Which office each registered client is in, and who its RVPs are: the
//! server's view of the topology with people in it. A plain state machine
//! (takes `now`, no I/O) owned by the registry.
//!
//! A client's office is resolved from its address when it registers and
//! again for everyone when a new topology is imported; an address no office
//! claims gets an automatic office, which is kept (and exported) like any
//! other. Elections are computed per office on demand and cached for
//! [`ELECTION_TTL`]; anyone joining or leaving the office marks it stale,
//! so an RVP that leaves is replaced on the next question. A sitting RVP
//! wins ties, so the seat does not flap while attributes wobble.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use branchline_storage::NodeId;

use crate::server::election::{self, Attributes, Candidate};
use crate::topology::{LinkBelow, Topology};
use crate::wire::{OfficeInfo, UpstreamLink};

/// How long a peer reported as not answering is left out of elections and
/// sources answers.
pub const SUSPECT_FOR: Duration = Duration::from_secs(60);
/// Distinct clients that must report a peer before it is left out (fewer
/// when fewer other clients are registered).
pub const REPORTS_NEEDED: usize = 2;

/// How long an office's election result is reused while its members stay
/// (changed attributes count after this long; joins and leaves at once).
pub const ELECTION_TTL: Duration = Duration::from_secs(600);

#[derive(Debug)]
struct Member {
    name: String,
    addr: IpAddr,
    office: String,
    attributes: Option<Attributes>,
}

/// Where one client may take a content's pieces from, by the source
/// order: its own office, then (only if it crosses the WAN for its office)
/// the nearest office up the tree with clients that serve, or the origin
/// when there is none above it or its office may use the origin directly.
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

/// The offices' members and elections.
#[derive(Debug)]
pub struct OfficeBook {
    topology: Topology,
    members: HashMap<NodeId, Member>,
    by_office: HashMap<String, BTreeSet<NodeId>>,
    elections: HashMap<String, Election>,
    /// Peers reported as not answering: who reported, and when last.
    reports: HashMap<NodeId, (BTreeSet<NodeId>, Instant)>,
    topology_dirty: bool,
    /// Each office's [`Topology::links_below`], worked out once per
    /// topology (every heartbeat answer carries it).
    links_below: HashMap<String, Vec<LinkBelow>>,
}

impl OfficeBook {
    /// A book over `topology`, with no members.
    pub fn new(topology: Topology) -> Self {
        OfficeBook {
            topology,
            members: HashMap::new(),
            by_office: HashMap::new(),
            elections: HashMap::new(),
            reports: HashMap::new(),
            topology_dirty: false,
            links_below: HashMap::new(),
        }
    }

    /// The topology.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Puts `id` (named `name`, at `addr`) in its office; returns the office.
    pub fn join(&mut self, id: NodeId, name: &str, addr: IpAddr) -> &str {
        self.leave(&id);
        let (office, made) = self.topology.resolve_or_add(addr);
        let office = office.name.clone();
        if made {
            tracing::info!(%office, client = %id, "no office claims this address; made an automatic office");
            self.topology_dirty = true;
            self.links_below.clear();
        }
        self.mark_stale(&office);
        self.by_office.entry(office.clone()).or_default().insert(id);
        let member = Member {
            name: name.to_owned(),
            addr,
            office,
            attributes: None,
        };
        &self
            .members
            .entry(id)
            .insert_entry(member)
            .into_mut()
            .office
    }

    /// Takes `id` out of its office.
    pub fn leave(&mut self, id: &NodeId) {
        if let Some(member) = self.members.remove(id) {
            self.mark_stale(&member.office);
            if let Some(set) = self.by_office.get_mut(&member.office) {
                set.remove(id);
            }
        }
    }

    /// Records what `id` reports about itself.
    pub fn set_attributes(&mut self, id: &NodeId, attributes: Attributes) {
        if let Some(member) = self.members.get_mut(id) {
            member.attributes = Some(attributes);
        }
    }

    /// Replaces the topology with one already stored and moves every
    /// member to its new office (automatic offices are made again for
    /// addresses it does not claim: only those make it to be stored again).
    pub fn set_topology(&mut self, topology: Topology) {
        self.topology = topology;
        self.topology_dirty = false;
        self.links_below.clear();
        self.by_office.clear();
        self.elections.values_mut().for_each(|e| e.stale = true);
        let members: Vec<(NodeId, Member)> = self.members.drain().collect();
        for (id, member) in members {
            let attributes = member.attributes;
            self.join(id, &member.name, member.addr);
            if let Some(attributes) = attributes {
                self.set_attributes(&id, attributes);
            }
        }
    }

    /// Marks the topology as still to be stored (a save was put off).
    pub fn keep_dirty(&mut self) {
        self.topology_dirty = true;
    }

    /// The topology, if it changed since the last call (for persisting).
    pub fn take_dirty(&mut self) -> Option<Topology> {
        std::mem::take(&mut self.topology_dirty).then(|| self.topology.clone())
    }

    /// `reporter` says `peer` stopped answering. Once enough distinct
    /// clients said so, the peer is left out of elections (its office
    /// elects again at once) and of sources answers for [`SUSPECT_FOR`].
    /// True if this report made it a suspect.
    pub fn report_unresponsive(&mut self, peer: NodeId, reporter: NodeId, now: Instant) -> bool {
        if peer == reporter || !self.members.contains_key(&reporter) {
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
        if suspect
            && !was
            && let Some(office) = self.members.get(&peer).map(|m| m.office.clone())
        {
            tracing::warn!(%peer, %office, "peer reported as not answering; left out of elections and answers");
            self.mark_stale(&office);
        }
        suspect && !was
    }

    /// Whether `peer` is left out because clients reported it silent.
    pub fn is_suspect(&self, peer: &NodeId, now: Instant) -> bool {
        let needed = REPORTS_NEEDED
            .min(self.members.len().saturating_sub(1))
            .max(1);
        self.reports
            .get(peer)
            .is_some_and(|(who, at)| now.duration_since(*at) < SUSPECT_FOR && who.len() >= needed)
    }

    /// Whether `id` is in `office` and not reported silent: a peer that
    /// office can take pieces from.
    pub fn serves_in(&self, office: &str, id: &NodeId, now: Instant) -> bool {
        self.office_of(id) == Some(office) && !self.is_suspect(id, now)
    }

    /// What `id` last reported about itself.
    pub fn attributes(&self, id: &NodeId) -> Option<Attributes> {
        self.members.get(id).and_then(|m| m.attributes)
    }

    /// The office `id` is in.
    pub fn office_of(&self, id: &NodeId) -> Option<&str> {
        self.members.get(id).map(|m| m.office.as_str())
    }

    /// The members of `office`.
    pub fn members_of(&self, office: &str) -> impl Iterator<Item = &NodeId> {
        self.by_office.get(office).into_iter().flatten()
    }

    /// What `id` is told about its office: name, type and RVPs.
    pub fn info(&mut self, id: &NodeId, now: Instant) -> Option<OfficeInfo> {
        let office = self.members.get(id)?.office.clone();
        let rvps = self.rvps(&office, now);
        let kind = self.topology.office(&office)?.kind;
        Some(OfficeInfo {
            purge_seq: 0,
            links_below: self
                .links_below
                .entry(office.clone())
                .or_insert_with(|| self.topology.links_below(&office))
                .clone(),
            name: office,
            kind,
            rvps,
            wanted: Vec::new(),
            revocations: None,
        })
    }

    /// Where `id` may take pieces from now. `stalled` says that its office
    /// has made no progress on the content for too long, so the client
    /// crosses the WAN itself instead of waiting for the RVP.
    pub fn plan(&mut self, id: &NodeId, stalled: bool, now: Instant) -> Option<SourcePlan> {
        let office = self.members.get(id)?.office.clone();
        let spec = self.topology.office(&office)?.clone();
        let rvps = self.rvps(&office, now);
        let crossing = if rvps.contains(id) {
            Some("rvp")
        } else if rvps.is_empty() {
            Some("no-rvp")
        } else if stalled {
            Some("fallback")
        } else {
            None
        };
        let upstream = if spec.origin_direct {
            None
        } else {
            self.serving_office_above(&office)
        };
        let origin = crossing.is_some() && upstream.is_none();
        let origin_reason = origin.then_some(if spec.origin_direct {
            "origin_direct"
        } else if spec.parent.is_none() {
            "top office"
        } else {
            "nothing above has clients"
        });
        Some(SourcePlan {
            origin_reason,
            office_serves: spec.kind.serves(),
            link: UpstreamLink {
                max_rate_mbit: spec.wan_rate_mbit,
                settings: spec.link,
            },
            origin,
            upstream: crossing.and(upstream),
            crossing,
            office,
        })
    }

    /// The nearest office above `office` with members that serve.
    fn serving_office_above(&self, office: &str) -> Option<String> {
        self.topology
            .path_to_top(office)
            .into_iter()
            .skip(1)
            .find(|o| o.kind.serves() && self.members_of(&o.name).next().is_some())
            .map(|o| o.name.clone())
    }

    /// The RVPs of `office`, electing them again if the cache is stale.
    /// VPN offices elect none: their clients never serve.
    pub fn rvps(&mut self, office: &str, now: Instant) -> Vec<NodeId> {
        self.elect(office, now).rvps.clone()
    }

    /// `id`'s place in the election order of `office` (0 is best), as of
    /// that office's last election (`rvps` brings it up to date).
    pub fn rank_of(&self, office: &str, id: &NodeId) -> Option<u32> {
        self.elections.get(office)?.rank.get(id).copied()
    }

    fn mark_stale(&mut self, office: &str) {
        if let Some(election) = self.elections.get_mut(office) {
            election.stale = true;
        }
    }

    fn elect(&mut self, office: &str, now: Instant) -> &Election {
        let sitting = match self.elections.get(office) {
            Some(e) if !e.stale && now.duration_since(e.at) < ELECTION_TTL => {
                return &self.elections[office];
            }
            Some(e) => e.rvps.clone(),
            None => Vec::new(),
        };
        let (ranked, rvp_count) = match self.topology.office(office) {
            Some(spec) => {
                let candidates: Vec<Candidate> = self
                    .members_of(office)
                    .filter(|id| !self.is_suspect(id, now))
                    .filter_map(|id| {
                        let member = &self.members[id];
                        member.attributes.map(|attributes| Candidate {
                            id: *id,
                            attributes,
                            preferred_by_office: spec.preferred.contains(&member.name),
                            incumbent: sitting.contains(id),
                        })
                    })
                    .collect();
                let count = if spec.kind.serves() {
                    spec.rvp_count
                } else {
                    0
                };
                (election::rank(&candidates), usize::from(count))
            }
            None => (Vec::new(), 0),
        };
        let election = Election {
            at: now,
            stale: false,
            rvps: ranked.iter().take(rvp_count).copied().collect(),
            rank: (0u32..).zip(ranked).map(|(i, id)| (id, i)).collect(),
        };
        self.elections.insert(office.to_owned(), election);
        &self.elections[office]
    }
}

#[cfg(test)]
mod tests;
