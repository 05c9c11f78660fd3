//! The RVP actor: on a client its office elected RVP (rendezvous point), it
//! pulls into the office the contents the office's clients want. The server
//! lists them with every heartbeat answer (`OfficeInfo::wanted`); for each,
//! the RVP starts a transfer through the office actor, which takes the
//! pieces from the office up the tree (or the origin, at the top) and shares
//! them in the office as they arrive. Starting is idempotent: the office
//! reuses a transfer that runs or finished well, and starts a failed one
//! again, so the next heartbeat retries anything that went wrong.

use std::collections::HashSet;

use actix::prelude::*;
use branchline_storage::ContentId;

use crate::client::office::{Office, StartTransfer};

/// Messages the RVP's mailbox holds at most. The server link sends with
/// `try_send`; a list dropped on a full mailbox comes again with the next
/// heartbeat.
pub const RVP_MAILBOX: usize = 16;

/// The RVP actor.
pub struct Rvp {
    office: Addr<Office>,
    seen: HashSet<ContentId>,
}

impl Rvp {
    /// An RVP that starts transfers through `office`.
    pub fn new(office: Addr<Office>) -> Self {
        Rvp {
            office,
            seen: HashSet::new(),
        }
    }
}

impl Actor for Rvp {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(RVP_MAILBOX);
    }
}

crate::supervised_controls!(Rvp);

impl Supervised for Rvp {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!("RVP actor restarting");
    }
}

/// Contents this node's office wants and this node, its RVP, should pull.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Wanted(pub Vec<ContentId>);

impl Handler<Wanted> for Rvp {
    type Result = ();

    fn handle(&mut self, msg: Wanted, _: &mut Context<Self>) {
        crate::supervision::handled();
        for content in msg.0 {
            if self.seen.insert(content) {
                tracing::info!(%content, "RVP: pulling the content into the office");
            }
            if self.office.try_send(StartTransfer(content)).is_err() {
                tracing::debug!(%content, "office busy; the next heartbeat asks again");
            }
        }
    }
}
