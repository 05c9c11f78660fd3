//! What one office's registry shows: its live clients and RVPs, its bans,
//! its use of the origin, its ledger and who of it holds each content. The
//! directory puts the offices' reports together for status.

use std::collections::BTreeMap;
use std::time::Instant;

use branchline_storage::ContentId;

use super::Registry;
use crate::wire::{BanView, ClientView, LinkView, OriginUse};

/// One office's part of the server's status.
#[derive(Clone, Debug, Default)]
pub struct OfficeReport {
    /// Its live clients, by name.
    pub clients: Vec<ClientView>,
    /// The names of its RVPs, best first.
    pub rvps: Vec<String>,
    /// Its ledger: its live clients' counters summed (office and parent
    /// left for the directory to fill in).
    pub link: LinkView,
    /// Pieces leased from the origin, by reason.
    pub origin: Vec<OriginUse>,
    /// Peers its clients banned.
    pub bans: Vec<BanView>,
    /// For each content, how many of its clients hold it whole and how
    /// many in part.
    pub holders: BTreeMap<ContentId, (u32, u32)>,
}

impl Registry {
    /// The office's report, for status.
    pub fn report(&mut self, now: Instant) -> OfficeReport {
        let office = self.book.name().to_owned();
        let rvp_ids = self.book.rvps(now);
        let mut report = OfficeReport {
            rvps: rvp_ids
                .iter()
                .filter_map(|id| self.clients.get(id).map(|c| c.record.name.clone()))
                .collect(),
            ..OfficeReport::default()
        };
        for (id, c) in &self.clients {
            report.clients.push(ClientView {
                id: *id,
                name: c.record.name.clone(),
                addr: c.record.addr,
                last_seen_ms_ago: u64::try_from(now.duration_since(c.last_seen).as_millis())
                    .unwrap_or(u64::MAX),
                rvp: rvp_ids.contains(id),
                office: office.clone(),
                attributes: self.book.attributes(id),
            });
            let link = &mut report.link;
            let counters = &c.counters;
            link.clients += 1;
            link.from_peers += counters.from_peers;
            link.from_parent += counters.from_parent;
            link.wire_from_parent += counters.wire_from_parent;
            link.from_origin += counters.from_origin;
            link.served += counters.served;
        }
        report
            .clients
            .sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        report.origin = self
            .origin_use
            .iter()
            .map(|(reason, pieces)| OriginUse {
                office: office.clone(),
                reason: (*reason).to_owned(),
                pieces: *pieces,
            })
            .collect();
        report.bans = self
            .bans
            .iter()
            .map(|(peer, (by, evidence))| BanView {
                office: office.clone(),
                peer: *peer,
                by: *by,
                evidence: evidence.clone(),
            })
            .collect();
        for (id, c) in &self.contents {
            let complete = c.holders.values().filter(|h| h.is_complete()).count();
            let partial = c
                .holders
                .values()
                .filter(|h| !h.is_complete() && h.holds_any())
                .count();
            report.holders.insert(
                *id,
                (
                    u32::try_from(complete).unwrap_or(u32::MAX),
                    u32::try_from(partial).unwrap_or(u32::MAX),
                ),
            );
        }
        report
    }
}
