//! The answer to "who holds which pieces of X", in three steps: the
//! asker's route (its office's plan: peers of the office, the office above
//! if it crosses the WAN, the origin), the origin leases that route allows,
//! and the answer itself as a delta against the asker's last one.

use std::time::Instant;

use branchline_storage::{NodeId, PieceMap};

use super::{Lease, MAX_PEERS_PER_ANSWER, Registry, RegistryError, WANTED_TTL};
use crate::client::stuck::MAX_STUCK_PER_QUERY;
use crate::server::answer_delta::{self, Leases, Source};
use crate::server::offices::SourcePlan;
use crate::wire::{SourcesAnswer, SourcesQuery};

/// The leases of a content as one asker sees them.
struct LeaseState {
    /// Pieces leased to others: being fetched from the origin already.
    elsewhere: PieceMap,
    /// Pieces leased to the asker.
    granted: Vec<u32>,
}

impl Registry {
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
        let plan = self.route(query, now);
        let leases = self.lease(query, &plan, now);
        Ok(self.answer(query, &plan, leases, now))
    }

    /// Whether `id` serves in `office` and was not banned there.
    fn serves_in(&self, office: &str, id: &NodeId, now: Instant) -> bool {
        self.offices.serves_in(office, id, now) && !self.banned_in(office, id)
    }

    /// Whether a client of `office` banned `id` for bad bytes.
    fn banned_in(&self, office: &str, id: &NodeId) -> bool {
        self.bans.get(office).is_some_and(|b| b.contains_key(id))
    }

    /// The asker's plan. Its office and every office above it want the
    /// content (each RVP on the way up pulls it, so it comes down the tree
    /// link by link); the office stalled if it gained nothing for longer
    /// than the RVP patience, counted from its last gain or from when it
    /// (again) started wanting the content.
    fn route(&mut self, query: &SourcesQuery, now: Instant) -> SourcePlan {
        let office = self
            .offices
            .office_of(&query.id)
            .expect("a registered client has an office")
            .to_owned();
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
        plan
    }

    /// Takes back the leases the asker released and those expired, then
    /// leases it pieces from the origin: the stuck ones it names (its
    /// peers claim them but never delivered, so the origin takes over
    /// from any office), and, if its plan allows the origin, pieces no one
    /// in its office holds. Counts the office's use of the origin.
    fn lease(&mut self, query: &SourcesQuery, plan: &SourcePlan, now: Instant) -> LeaseState {
        let office = plan.office.as_str();
        let office_has = plan.origin.then(|| {
            self.contents[&query.content].held_among(|id| self.serves_in(office, id, now))
        });
        let lease = Lease {
            holder: query.id,
            expires: now + self.timing.lease_ttl,
        };
        let c = self
            .contents
            .get_mut(&query.content)
            .expect("checked by sources");
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
            let used = self
                .origin_use
                .entry((office.to_owned(), reason))
                .or_insert(0);
            if *used == 0 {
                tracing::info!(%office, content = %query.content, reason, "the office takes pieces from the origin");
            }
            *used += u64::from(count);
        }
        state
    }

    /// The peers of the asker's office (if they serve) and of the office
    /// above it (if it crosses the WAN), at most [`MAX_PEERS_PER_ANSWER`]
    /// each, as a delta against the last answer the asker saw.
    fn answer(
        &mut self,
        query: &SourcesQuery,
        plan: &SourcePlan,
        leases: LeaseState,
        now: Instant,
    ) -> SourcesAnswer {
        let c = &self.contents[&query.content];
        let source = |(id, have): (&NodeId, &PieceMap), from: &str, upstream: bool| {
            self.clients.get(id).map(|client| Source {
                id: *id,
                addr: if upstream {
                    client.record.background
                } else {
                    client.record.addr
                },
                upstream,
                rank: self.offices.rank_of(from, id).unwrap_or(u32::MAX),
                have: have.clone(),
            })
        };
        let mut sources: Vec<Source> = Vec::new();
        let office = plan.office.as_str();
        if plan.office_serves {
            let in_office = |id: &NodeId| self.serves_in(office, id, now);
            sources.extend(
                c.chosen_peers(&query.id, MAX_PEERS_PER_ANSWER, in_office)
                    .into_iter()
                    .filter_map(|h| source(h, office, false)),
            );
        }
        if let Some(upstream) = &plan.upstream {
            // Bans are the asker's office's: its clients refused that peer.
            let in_upstream = |id: &NodeId| {
                self.offices.serves_in(upstream, id, now) && !self.banned_in(office, id)
            };
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
