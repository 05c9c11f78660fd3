//! What the registry shows: live clients, bans, origin use, each office's
//! ledger, the office tree and the published contents.

use std::collections::HashMap;
use std::time::Instant;

use branchline_storage::NodeId;

use super::{Client, Registry};
use crate::wire::{
    BanView, ClientView, ContentView, LinkView, OfficeView, OriginUse, TopologyView,
};

impl Registry {
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
