//! The answer to "who holds which pieces of X", in steps: the asker's
//! route (its office's plan, and the wish for X told up the tree), the
//! peers of the office above that the plan needs (asked actor to actor,
//! answered here by [`Registry::upstream_sources`]), the origin leases the
//! plan allows, and the answer itself as a delta against the asker's last
//! one.

use std::sync::Arc;
use std::time::Instant;

use branchline_storage::{ContentId, NodeId, PieceMap};

use super::{Lease, MAX_PEERS_PER_ANSWER, Registry, RegistryError, WANTED_TTL};
use crate::client::stuck::MAX_STUCK_PER_QUERY;
use crate::server::answer_delta::{self, Leases, Roster, Source};
use crate::server::offices::{Share, SourcePlan};
use crate::wire::{SourcesAnswer, SourcesQuery};

/// The leases of a content as one asker sees them.
struct LeaseState {
    /// Pieces leased to others: being fetched from the origin already.
    elsewhere: PieceMap,
    /// Pieces leased to the asker.
    granted: Vec<u32>,
}

/// What an office up the tree offers an office below: its name and the
/// peers of it that hold pieces of the content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream {
    /// The office.
    pub office: String,
    /// Its peers for the asker, at most [`MAX_PEERS_PER_ANSWER`].
    pub peers: Vec<Source>,
}

/// What [`Registry::begin_sources`] found: the asker's plan, and whether
/// the offices above must hear that this office wants the content.
#[derive(Debug)]
pub struct Route {
    /// The plan, still to be settled with the office above if
    /// `plan.asks_above`.
    pub plan: SourcePlan,
    /// Tell the offices above that the content is wanted here.
    pub tell_above: bool,
}

impl Registry {
    /// The first step of "who holds which pieces": the asker's plan by the
    /// source order. Peers in its office; if it crosses the WAN for its
    /// office (its RVP, an office without RVP, or an office that stalled),
    /// holders in the nearest serving office above it, which the caller
    /// asks for ([`Registry::upstream_sources`] there) before
    /// [`Registry::finish_sources`]. The office stalled if it gained
    /// nothing for longer than the RVP patience, counted from its last gain
    /// or from when it (again) started wanting the content.
    pub fn begin_sources(
        &mut self,
        query: &SourcesQuery,
        now: Instant,
    ) -> Result<Route, RegistryError> {
        if !self.heartbeat(&query.id, now) {
            return Err(RegistryError::UnknownClient(query.id));
        }
        if self.content_mut(&query.content).is_none() {
            return Err(RegistryError::UnknownContent(query.content));
        }
        // Leases given back by a transfer that ended do not make the
        // content wanted again, nor ask the offices above.
        let giving_back = query.only_gives_back();
        let tell_above = !giving_back && self.want(query.content, now);
        let since = self.progress.get(&query.content).copied().unwrap_or(now);
        let stalled = now.duration_since(since) > self.timing.rvp_patience;
        let mut plan = self
            .book
            .plan(&query.id, stalled, now)
            .expect("a registered client is a member");
        plan.asks_above &= !giving_back;
        if plan.crossing == Some("fallback") && self.fallbacks.insert((query.content, query.id)) {
            tracing::warn!(
                client = %query.id, office = %plan.office, content = %query.content,
                patience_s = self.timing.rvp_patience.as_secs(),
                "office made no progress; this client crosses the WAN itself instead of waiting for its RVP"
            );
        }
        Ok(Route { plan, tell_above })
    }

    /// Marks `content` wanted here, starting its patience if it was not
    /// wanted already; true if the offices above must be told.
    fn want(&mut self, content: ContentId, now: Instant) -> bool {
        let wanted_before = self
            .wanted
            .get(&content)
            .is_some_and(|at| now.duration_since(*at) < WANTED_TTL);
        let tell_above = self.note_wanted(content, now);
        if !wanted_before {
            self.progress.insert(content, now);
        }
        self.progress.entry(content).or_insert(now);
        tell_above
    }

    /// Asked by an office below for `asker`, a client of it crossing the
    /// WAN: this office's peers that hold pieces of `content`, but for
    /// those `banned` by the asker's office. `None` if no client of this
    /// office serves (it has none, or it is a VPN office): the asker's
    /// office asks the office above this one instead.
    pub fn upstream_sources(
        &mut self,
        content: &ContentId,
        asker: &NodeId,
        banned: &[NodeId],
        now: Instant,
    ) -> Option<Upstream> {
        if !self.book.serves_below() {
            return None;
        }
        // Brings the election order up to date for the ranks.
        self.book.rvps(now);
        let office = self.book.name().to_owned();
        if self.content_mut(content).is_none() {
            return Some(Upstream {
                office,
                peers: Vec::new(),
            });
        }
        let c = &self.contents[content];
        let keep = |id: &NodeId| self.book.serves(id, now) && !banned.contains(id);
        let peers = c
            .chosen_peers(asker, MAX_PEERS_PER_ANSWER, keep)
            .into_iter()
            .filter_map(|(id, have)| self.source(id, have, true))
            .collect();
        Some(Upstream { office, peers })
    }

    /// The peers of the office above, as this office last heard of them,
    /// changed: moves the content's version, which wakes the long-polls.
    pub fn upstream_moved(&mut self, content: &ContentId) {
        if let Some(c) = self.contents.get_mut(content) {
            c.version += 1;
        }
    }

    /// The last step: takes back the leases the asker released and those
    /// expired, leases it pieces from the origin if its (settled) plan
    /// allows, and answers with the peers of its office (if they serve)
    /// and `upstream`'s, as a delta against the last answer it saw.
    pub fn finish_sources(
        &mut self,
        query: &SourcesQuery,
        plan: &SourcePlan,
        upstream: Option<Upstream>,
        now: Instant,
    ) -> Result<SourcesAnswer, RegistryError> {
        if !self.contents.contains_key(&query.content) {
            // Purged while the office above was asked.
            return Err(RegistryError::UnknownContent(query.content));
        }
        let leases = self.lease(query, plan, now);
        Ok(self.answer(query, plan, upstream, leases, now))
    }

    /// The members as answers list them now: the one kept, unless a
    /// member joined, left, moved or was ranked anew since.
    fn roster(&mut self) -> Arc<Roster> {
        let roster = Roster::new(self.clients.iter().map(|(id, client)| {
            let rank = self.book.rank_of(id).unwrap_or(u32::MAX);
            (*id, client.record.addr, rank)
        }));
        if roster != *self.roster {
            self.roster = Arc::new(roster);
        }
        self.roster.clone()
    }

    /// Whether `id` serves in this office and no client of it banned it.
    fn serves_here(&self, id: &NodeId, now: Instant) -> bool {
        self.book.serves(id, now) && !self.bans.contains_key(id)
    }

    /// `id` holding `have`, as a source (`upstream` for an office below).
    fn source(&self, id: &NodeId, have: &PieceMap, upstream: bool) -> Option<Source> {
        let client = self.clients.get(id)?;
        Some(Source {
            id: *id,
            addr: if upstream {
                client.record.background
            } else {
                client.record.addr
            },
            upstream,
            rank: self.book.rank_of(id).unwrap_or(u32::MAX),
            have: have.clone(),
        })
    }

    /// Takes back the leases the asker released and those expired, then
    /// leases it pieces from the origin: the stuck ones it names (its
    /// peers claim them but never delivered, so the origin takes over
    /// from any office), and, if its plan allows the origin, pieces no one
    /// in its office holds. Counts the office's use of the origin.
    fn lease(&mut self, query: &SourcesQuery, plan: &SourcePlan, now: Instant) -> LeaseState {
        let office_has = plan
            .origin
            .then(|| self.contents[&query.content].held_among(|id| self.serves_here(id, now)));
        let lease = Lease {
            holder: query.id,
            expires: now + self.timing.lease_ttl,
        };
        let c = self
            .contents
            .get_mut(&query.content)
            .expect("checked by finish_sources");
        let mut changed = c.expire_leases(now);
        for index in &query.release {
            if c.leases.get(index).is_some_and(|l| l.holder == query.id) {
                c.leases.remove(index);
                changed = true;
            }
        }
        let len = c.record.manifest.piece_count();
        let asker_has = c.holders.get(&query.id).cloned();
        let stuck = query
            .stuck
            .iter()
            .take(MAX_STUCK_PER_QUERY)
            .copied()
            .filter(|&i| i < len && !asker_has.as_ref().is_some_and(|h| h.get(i)));
        let stuck_leases = c.grant(stuck, query.want_leases, lease);
        let mut new = stuck_leases;
        if let Some(office_has) = &office_has {
            let unheld = (0..len).filter(|&i| !office_has.get(i));
            new += c.grant(unheld, query.want_leases - new, lease);
        }
        if changed || new > 0 {
            c.version += 1;
        }
        let mut state = LeaseState {
            elsewhere: PieceMap::new(len),
            granted: Vec::new(),
        };
        for (&index, lease) in &c.leases {
            if lease.holder == query.id {
                state.granted.push(index);
            } else {
                state.elsewhere.set(index);
            }
        }
        let plan_reason = plan.origin_reason.unwrap_or("top office");
        for (reason, count) in [("stuck", stuck_leases), (plan_reason, new - stuck_leases)] {
            if count == 0 {
                continue;
            }
            let used = self.origin_use.entry(reason).or_insert(0);
            if *used == 0 {
                tracing::info!(office = %plan.office, content = %query.content, reason, "the office takes pieces from the origin");
            }
            *used += u64::from(count);
        }
        state
    }

    /// The peers of the asker's office (if they serve), at most
    /// [`MAX_PEERS_PER_ANSWER`], and those of the office above, as a delta
    /// against the last answer the asker saw.
    fn answer(
        &mut self,
        query: &SourcesQuery,
        plan: &SourcePlan,
        upstream: Option<Upstream>,
        leases: LeaseState,
        now: Instant,
    ) -> SourcesAnswer {
        // Several RVPs cross the WAN for the office: each takes its share
        // from above, shared among those that serve now. An office that
        // stalled takes anything: an RVP that delivers nothing holds no
        // piece back for longer than the patience.
        let share = if plan.crossing == Some("rvp") && !plan.stalled {
            let rvps = self.book.rvps(now);
            let serving: Vec<NodeId> = rvps
                .into_iter()
                .filter(|id| self.serves_here(id, now))
                .collect();
            Share::among(&serving, &query.id)
        } else {
            None
        };
        let roster = self.roster();
        let c = &self.contents[&query.content];
        let mut sources: Vec<Source> = Vec::new();
        if plan.office_serves {
            let in_office = |id: &NodeId| self.serves_here(id, now);
            sources.extend(
                c.chosen_peers(&query.id, MAX_PEERS_PER_ANSWER, in_office)
                    .into_iter()
                    .filter_map(|(id, have)| self.source(id, have, false)),
            );
        }
        if let Some(upstream) = upstream.filter(|_| plan.upstream.is_some()) {
            sources.extend(upstream.peers.into_iter().filter_map(|mut peer| {
                let Some(share) = share else {
                    return Some(peer);
                };
                // A peer with nothing of this RVP's share is not offered.
                peer.have = share.of_map(&peer.have);
                peer.have.holds_any().then_some(peer)
            }));
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
            &roster,
            last.zip(changes.as_ref()),
            Leases {
                elsewhere: leases.elsewhere,
                granted: leases.granted,
                upstream_link: plan.upstream.as_ref().map(|_| plan.link),
            },
            now,
        );
        self.answered.insert(key, record);
        answer
    }
}
