//! What the server shows: each running office's report, asked of its
//! actor, put together in the topology's order.

use std::collections::HashMap;

use actix::prelude::*;

use super::DirectoryActor;
use crate::server::office_messages::GetReport;
use crate::server::registry::OfficeReport;
use crate::topology::diff::{TopologyChange, diff};
use crate::topology::{Topology, spreadsheet};
use crate::wire::{ContentView, LinkView, OfficeHoldings, OfficeView, RegistryView, TopologyView};

impl DirectoryActor {
    /// Every running office's report, by office name (an office whose
    /// actor does not answer is left out).
    fn reports(&self) -> ResponseActFuture<Self, HashMap<String, OfficeReport>> {
        let asked: Vec<_> = self
            .offices
            .iter()
            .map(|(name, addr)| {
                let report = addr.send(GetReport);
                let name = name.clone();
                async move { report.await.ok().map(|r| (name, r)) }
            })
            .collect();
        Box::pin(
            futures_util::future::join_all(asked)
                .into_actor(self)
                .map(|reports, _, _| reports.into_iter().flatten().collect()),
        )
    }

    fn registry_view(&self, mut reports: HashMap<String, OfficeReport>) -> RegistryView {
        let mut view = RegistryView {
            clients: Vec::new(),
            contents: Vec::new(),
            links: Vec::new(),
            origin: Vec::new(),
            bans: Vec::new(),
            holdings: Vec::new(),
        };
        let mut holders: HashMap<_, (u32, u32)> = HashMap::new();
        for office in self.topology.top_down() {
            let report = reports.remove(&office.name).unwrap_or_default();
            view.clients.extend(report.clients);
            view.origin.extend(report.origin);
            view.bans.extend(report.bans);
            for (content, (complete, partial)) in report.holders {
                let sum = holders.entry(content).or_default();
                sum.0 += complete;
                sum.1 += partial;
                view.holdings.push(OfficeHoldings {
                    office: office.name.clone(),
                    content,
                    complete,
                    partial,
                });
            }
            view.links.push(LinkView {
                office: office.name.clone(),
                parent: office.parent.clone(),
                ..report.link
            });
        }
        view.clients
            .sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        view.contents = self
            .catalogue
            .iter()
            .map(|(id, published)| {
                let (complete, partial) = holders.get(id).copied().unwrap_or_default();
                let manifest = &published.record.manifest;
                ContentView {
                    id: *id,
                    name: manifest.name.clone(),
                    size: manifest.size,
                    pieces: manifest.piece_count(),
                    origins: published.record.origins.clone(),
                    confidential: published.confidential,
                    complete_holders: complete,
                    partial_holders: partial,
                }
            })
            .collect();
        view.contents
            .sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        view
    }

    fn topology_view(&self, mut reports: HashMap<String, OfficeReport>) -> TopologyView {
        let offices = self
            .topology
            .top_down()
            .map(|office| {
                let report = reports.remove(&office.name).unwrap_or_default();
                let mut clients: Vec<String> = report.clients.into_iter().map(|c| c.name).collect();
                clients.sort();
                OfficeView {
                    name: office.name.clone(),
                    parent: office.parent.clone(),
                    kind: office.kind,
                    blocks: office.blocks.iter().map(ToString::to_string).collect(),
                    automatic: office.automatic,
                    clients,
                    rvps: report.rvps,
                }
            })
            .collect();
        TopologyView { offices }
    }
}

/// What the server holds, for status.
#[derive(Debug, Message)]
#[rtype(result = "RegistryView")]
pub struct GetRegistryView;

impl Handler<GetRegistryView> for DirectoryActor {
    type Result = ResponseActFuture<Self, RegistryView>;
    fn handle(&mut self, _: GetRegistryView, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        Box::pin(
            self.reports()
                .map(|reports, act, _| act.registry_view(reports)),
        )
    }
}

/// What importing a spreadsheet would change, without changing anything:
/// the sheet is read off the directory's thread, then compared with the
/// topology in force and the live clients' addresses.
#[derive(Debug, Message)]
#[rtype(result = "Result<TopologyChange, Vec<String>>")]
pub struct PreviewTopology(pub Vec<u8>);

impl Handler<PreviewTopology> for DirectoryActor {
    type Result = ResponseActFuture<Self, Result<TopologyChange, Vec<String>>>;
    fn handle(&mut self, msg: PreviewTopology, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        let parsed = crate::panics::run_blocking(
            || {},
            move || {
                spreadsheet::import(&msg.0)
                    .map_err(|problems| problems.iter().map(ToString::to_string).collect())
            },
        );
        Box::pin(
            parsed
                .into_actor(self)
                .then(|parsed, act, _| -> Self::Result {
                    let new: Topology = match parsed {
                        Ok(Ok(topology)) => topology,
                        Ok(Err(problems)) => return Box::pin(fut::ready(Err(problems))),
                        Err(e) => {
                            let stopped = vec![format!("the preview stopped: {e}")];
                            return Box::pin(fut::ready(Err(stopped)));
                        }
                    };
                    Box::pin(act.reports().map(move |reports, act, _| {
                        let clients: Vec<_> = reports
                            .values()
                            .flat_map(|r| &r.clients)
                            .map(|c| (c.name.clone(), c.addr.ip(), c.office.clone()))
                            .collect();
                        Ok(diff(&act.topology, &new, &clients))
                    }))
                }),
        )
    }
}

/// The office tree with its clients and RVPs.
#[derive(Debug, Message)]
#[rtype(result = "TopologyView")]
pub struct ShowTopology;

impl Handler<ShowTopology> for DirectoryActor {
    type Result = ResponseActFuture<Self, TopologyView>;
    fn handle(&mut self, _: ShowTopology, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        Box::pin(
            self.reports()
                .map(|reports, act, _| act.topology_view(reports)),
        )
    }
}
