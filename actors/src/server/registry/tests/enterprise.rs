//! Offices' registries wired together by hand, the way the directory and
//! the office actors wire them with messages: for tests of the decisions
//! that span offices (the source order up the tree, "wanted" going up, a
//! client moving office with what it holds) without an actor system.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use branchline_storage::{ContentId, ContentRecord, NodeId, Origin, OriginKind, PieceMap};

use crate::server::catalogue::{Catalogue, CatalogueError};
use crate::server::registry::{Dirty, Registry, RegistryError, RegistryTiming, Reported};
use crate::server::seats::Seats;
use crate::topology::Topology;
use crate::wire::{ContentView, Registration, SourcesAnswer, SourcesQuery};

/// Every office's registry, the topology and the catalogue.
pub struct Enterprise {
    timing: RegistryTiming,
    topology: Topology,
    catalogue: Arc<Catalogue>,
    seats: Arc<Seats>,
    offices: BTreeMap<String, Registry>,
    home: HashMap<NodeId, String>,
}

impl Enterprise {
    /// No clients, the default topology.
    pub fn new(timing: RegistryTiming) -> Self {
        Enterprise {
            timing,
            topology: Topology::default(),
            catalogue: Arc::default(),
            seats: Arc::new(Seats::default()),
            offices: BTreeMap::new(),
            home: HashMap::new(),
        }
    }

    /// The same, with a cap on registered clients.
    pub fn capped(timing: RegistryTiming, max: usize) -> Self {
        Enterprise {
            seats: Arc::new(Seats::new(max)),
            ..Enterprise::new(timing)
        }
    }

    /// Office `name`'s registry, made (as the directory starts an office
    /// actor) if it is not there yet.
    pub fn office(&mut self, name: &str) -> &mut Registry {
        let spec = self.topology.office(name).expect("an office").clone();
        let links = self.topology.links_below(name);
        self.offices.entry(name.to_owned()).or_insert_with(|| {
            Registry::new(
                self.timing,
                spec,
                links,
                self.catalogue.clone(),
                self.seats.clone(),
            )
        })
    }

    /// The registry of the office `id` registered in.
    pub fn at(&mut self, id: &NodeId) -> &mut Registry {
        let home = self.home[id].clone();
        self.office(&home)
    }

    /// The offices above `office`, nearest first: where its questions go
    /// up the tree, parent actor to parent actor.
    fn above(&self, office: &str) -> Vec<String> {
        self.topology
            .path_to_top(office)
            .iter()
            .skip(1)
            .map(|o| o.name.clone())
            .collect()
    }

    /// The office `id` is in.
    pub fn office_of(&self, id: &NodeId) -> Option<&str> {
        self.home.get(id).map(String::as_str)
    }

    /// Publishes (each origin's kind inferred from its URL), and tells
    /// every office.
    pub fn publish(
        &mut self,
        record: ContentRecord,
        confidential: bool,
    ) -> Result<ContentId, CatalogueError> {
        let origins = record
            .origins
            .iter()
            .map(|url| Origin {
                url: url.clone(),
                kind: OriginKind::infer(url, None),
            })
            .collect();
        let id = Arc::make_mut(&mut self.catalogue).publish(record, origins, confidential)?;
        self.tell_catalogue();
        Ok(id)
    }

    /// Purges, and tells every office.
    pub fn purge(&mut self, id: &ContentId) -> bool {
        let purged = Arc::make_mut(&mut self.catalogue).purge(id);
        self.tell_catalogue();
        purged
    }

    /// A purge became durable.
    pub fn purged_up_to(&mut self, seq: u64) {
        Arc::make_mut(&mut self.catalogue).purged_up_to(seq);
        self.tell_catalogue();
    }

    fn tell_catalogue(&mut self) {
        for office in self.offices.values_mut() {
            office.set_catalogue(self.catalogue.clone());
        }
    }

    /// Registers a client seen at `seen` in its office.
    pub fn register(
        &mut self,
        reg: Registration,
        seen: IpAddr,
        now_ms: u64,
        now: Instant,
    ) -> Result<(), RegistryError> {
        let name = self.topology.resolve_or_add(seen).0.name.clone();
        let id = reg.id;
        self.office(&name).register(reg, seen, now_ms, now)?;
        self.home.insert(id, name);
        Ok(())
    }

    /// "Who holds which pieces", asked in the asker's office and, if its
    /// plan says so, of the offices above it in turn.
    pub fn sources(
        &mut self,
        query: &SourcesQuery,
        now: Instant,
    ) -> Result<SourcesAnswer, RegistryError> {
        let Some(home) = self.home.get(&query.id).cloned() else {
            return Err(RegistryError::UnknownClient(query.id));
        };
        let route = self.office(&home).begin_sources(query, now)?;
        let path = self.above(&home);
        if route.tell_above {
            for above in &path {
                if !self.office(above).note_wanted(query.content, now) {
                    break;
                }
            }
        }
        let mut plan = route.plan;
        let mut upstream = None;
        if plan.asks_above {
            let banned = self.office(&home).banned();
            for above in &path {
                upstream =
                    self.office(above)
                        .upstream_sources(&query.content, &query.id, &banned, now);
                if upstream.is_some() {
                    break;
                }
            }
        }
        plan.settle(upstream.as_ref().map(|u| u.office.clone()));
        self.office(&home)
            .finish_sources(query, &plan, upstream, now)
    }

    /// A report of holdings, in the reporter's office.
    pub fn report_have(
        &mut self,
        id: NodeId,
        content: ContentId,
        have: PieceMap,
        now: Instant,
    ) -> Result<(), RegistryError> {
        match self.home.get(&id).cloned() {
            Some(home) => self.office(&home).report_have(id, content, have, now),
            None => Err(RegistryError::UnknownClient(id)),
        }
    }

    /// A report that `peer` stopped answering, carried up the tree until
    /// the peer's office.
    pub fn report_unresponsive(&mut self, id: NodeId, peer: NodeId, now: Instant) -> Reported {
        let Some(home) = self.home.get(&id).cloned() else {
            return Reported::UnknownReporter;
        };
        let reported = self.office(&home).report_unresponsive(id, peer, now);
        if reported == Reported::NotHere {
            for above in self.above(&home) {
                if self.office(&above).suspect(peer, id, now) {
                    break;
                }
            }
        }
        reported
    }

    /// Expires silent clients in every office.
    pub fn expire(&mut self, now: Instant) -> Vec<NodeId> {
        let gone: Vec<NodeId> = self
            .offices
            .values_mut()
            .flat_map(|o| o.expire(now))
            .collect();
        self.home.retain(|id, _| !gone.contains(id));
        gone
    }

    /// What every office has to persist.
    pub fn take_dirty(&mut self) -> Dirty {
        let mut all = Dirty::default();
        for office in self.offices.values_mut() {
            let dirty = office.take_dirty();
            all.clients.extend(dirty.clients);
            all.removed.extend(dirty.removed);
            all.holdings.extend(dirty.holdings);
        }
        all
    }

    /// Published contents with their holders, as status shows them.
    pub fn content_views(&mut self) -> Vec<ContentView> {
        let now = Instant::now();
        let mut holders: HashMap<ContentId, (u32, u32)> = HashMap::new();
        for office in self.offices.values_mut() {
            for (id, (complete, partial)) in office.report(now).holders {
                let sum = holders.entry(id).or_default();
                sum.0 += complete;
                sum.1 += partial;
            }
        }
        self.catalogue
            .iter()
            .map(|(id, p)| {
                let (complete, partial) = holders.get(id).copied().unwrap_or_default();
                ContentView {
                    id: *id,
                    name: p.record.manifest.name.clone(),
                    size: p.record.manifest.size,
                    pieces: p.record.manifest.piece_count(),
                    origins: p.record.origins.clone(),
                    confidential: p.confidential,
                    complete_holders: complete,
                    partial_holders: partial,
                }
            })
            .collect()
    }

    /// A new topology: every office learns its place and hands over the
    /// clients that belong elsewhere now, which their new offices adopt.
    pub fn set_topology(&mut self, topology: Topology, now: Instant) {
        self.topology = topology;
        let mut moving = Vec::new();
        for (name, office) in &mut self.offices {
            match self.topology.office(name) {
                Some(spec) => {
                    office.set_spec(spec.clone(), self.topology.links_below(name));
                    let topology = &self.topology;
                    moving.extend(office.take_leavers(|addr| {
                        topology.resolve(addr).is_some_and(|o| &o.name == name)
                    }));
                }
                None => moving.extend(office.take_leavers(|_| false)),
            }
        }
        for mover in moving {
            let name = self.topology.resolve_or_add(mover.addr).0.name.clone();
            self.home.insert(mover.record.id, name.clone());
            self.office(&name).adopt(mover, now);
        }
    }
}
