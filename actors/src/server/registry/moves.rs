//! Clients moving from one office to another when a new topology is
//! imported: the old office hands each one over with what it holds, and
//! the new office takes it in. Nothing is written to the store and no
//! seat is taken twice: the client only changes office.

use std::net::IpAddr;
use std::time::Instant;

use branchline_storage::{ClientRecord, ContentId, NodeId, PieceMap};

use super::{Client, Registry};
use crate::server::election::Attributes;
use crate::wire::ByteCounters;

/// A client on its way from one office to another (a new topology): what
/// it is, and what it holds.
#[derive(Clone, Debug)]
pub struct Moving {
    /// Its record.
    pub record: ClientRecord,
    /// The address its office is resolved from.
    pub addr: IpAddr,
    /// What it last reported about itself.
    pub attributes: Option<Attributes>,
    /// Its byte counters.
    pub counters: ByteCounters,
    /// What it holds.
    pub holdings: Vec<(ContentId, PieceMap)>,
}

impl Registry {
    /// Takes out every client that `stays` says no longer belongs here (by
    /// the address its office was resolved from), with what it holds.
    pub fn take_leavers(&mut self, stays: impl Fn(IpAddr) -> bool) -> Vec<Moving> {
        let leaving: Vec<NodeId> = self
            .book
            .members()
            .filter(|(_, m)| !stays(m.addr))
            .map(|(id, _)| *id)
            .collect();
        leaving
            .into_iter()
            .filter_map(|id| self.take_client(&id))
            .collect()
    }

    /// Takes client `id` out of the office with what it holds, to move it
    /// to another: it is not removed from the store, and its seat goes
    /// with it.
    fn take_client(&mut self, id: &NodeId) -> Option<Moving> {
        let client = self.clients.remove(id)?;
        let member = self.book.leave(id)?;
        self.seats.give_back();
        self.answered.retain(|(asker, _), _| asker != id);
        self.dirty_clients.remove(id);
        let mut holdings = Vec::new();
        for (content, c) in &mut self.contents {
            if let Some(have) = c.holders.get(id).cloned() {
                holdings.push((*content, have));
                c.remove_holder(id);
            }
            c.leases.retain(|_, l| l.holder != *id);
        }
        self.dirty_holdings.retain(|(_, holder)| holder != id);
        Some(Moving {
            record: client.record,
            addr: member.addr,
            attributes: member.attributes,
            counters: client.counters,
            holdings,
        })
    }

    /// Takes in a client moved from another office, with what it holds
    /// (unless it registered here meanwhile, which is newer).
    pub fn adopt(&mut self, moving: Moving, now: Instant) {
        let id = moving.record.id;
        if self.clients.contains_key(&id) {
            return;
        }
        self.seats.take_anyway();
        self.book.join(id, &moving.record.name, moving.addr);
        if let Some(attributes) = moving.attributes {
            self.book.set_attributes(&id, attributes);
        }
        self.clients.insert(
            id,
            Client {
                record: moving.record,
                last_seen: now,
                counters: moving.counters,
            },
        );
        self.dirty_clients.insert(id);
        for (content, have) in moving.holdings {
            let _ = self.set_have(id, content, have);
        }
    }
}
