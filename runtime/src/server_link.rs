//! The server link actor: a client's connection to the server. It
//! registers (with everything the cache holds), sends heartbeats, carries
//! the other actors' requests, and coalesces have reports so only the newest
//! map per content is sent. It survives server outages: calls fail with a
//! clear error meanwhile, and it registers again when the server is back or
//! says it does not know this client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use branchline_actors::client::counters::Counters;
use branchline_actors::client::office::Purged;
use branchline_actors::client::rvp::Wanted;
use branchline_actors::client::store::{ApplyPurges, GetInventory, PurgesSeen, Store};
use branchline_actors::messages::{LinkError, ReportHave, ServerCall};
use branchline_actors::wire::{OfficeInfo, Registration, ServerReply, ServerRequest};
use branchline_storage::{ContentId, NodeId, PieceMap};
use rustls::pki_types::CertificateRevocationListDer;

use crate::attributes::AttributeSource;
use crate::link_status::LinkStatus;
use crate::revocation::Trust;
use crate::server_channel::ServerChannel;

/// Messages the link's mailbox holds at most.
pub const LINK_MAILBOX: usize = 512;
/// How often the link checks whether a heartbeat is due.
const HEARTBEAT_TICK: Duration = Duration::from_millis(250);

/// Who this client is, as it registers.
#[derive(Clone, Debug)]
pub struct Identity {
    /// Its id.
    pub id: NodeId,
    /// Its name.
    pub name: String,
    /// Where peers of its office reach it (foreground endpoint).
    pub addr: SocketAddr,
    /// Where child offices' RVPs reach it (background endpoint).
    pub background: SocketAddr,
}

/// The server link actor.
pub struct ServerLink {
    channel: ServerChannel,
    me: Identity,
    store: Addr<Store>,
    attributes: AttributeSource,
    status: Arc<LinkStatus>,
    counters: Arc<Counters>,
    rvp: Option<Recipient<Wanted>>,
    /// The office actor, told of purged contents.
    office: Option<Recipient<Purged>>,
    /// The number of the last server purge applied here, once read.
    purges_seen: Option<u64>,
    /// A purge catch-up is under way.
    purging: bool,
    registering: bool,
    heartbeat: Duration,
    last_beat: Instant,
    pending_have: HashMap<ContentId, PieceMap>,
    flushing: bool,
    /// With the cluster PKI: the revocation list in force, which the
    /// server's replaces.
    trust: Option<Arc<Trust>>,
}

impl ServerLink {
    /// A link to the server over `channel`, reporting the attributes
    /// `attributes` reads and the node's `counters`. `status` is shared
    /// with the admin socket.
    pub fn new(
        channel: ServerChannel,
        me: Identity,
        store: Addr<Store>,
        attributes: AttributeSource,
        status: Arc<LinkStatus>,
        counters: Arc<Counters>,
    ) -> Self {
        ServerLink {
            channel,
            me,
            store,
            attributes,
            status,
            counters,
            rvp: None,
            office: None,
            purges_seen: None,
            purging: false,
            registering: false,
            heartbeat: Duration::from_secs(5),
            trust: None,
            last_beat: branchline_actors::clock::now(),
            pending_have: HashMap::new(),
            flushing: false,
        }
    }

    fn register(&mut self, ctx: &mut Context<Self>) {
        if self.registering {
            return;
        }
        self.registering = true;
        self.status.set_registered(false);
        let (slot, store, me) = (self.channel.clone(), self.store.clone(), self.me.clone());
        let source = self.attributes.clone();
        let attempt = async move {
            let attributes = tokio::task::spawn_blocking(move || source.read())
                .await
                .map_err(|e| e.to_string())?;
            let inventory = store
                .send(GetInventory)
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            let registration = Registration {
                id: me.id,
                name: me.name,
                addr: me.addr,
                background: me.background,
                holdings: inventory.holdings,
                attributes,
            };
            slot.call(ServerRequest::Register(registration))
                .await
                .map_err(|e| e.to_string())
        };
        ctx.spawn(attempt.into_actor(self).map(|result, act, ctx| {
            act.registering = false;
            match result {
                Ok(ServerReply::Registered {
                    heartbeat_ms,
                    office,
                }) => {
                    act.heartbeat = Duration::from_millis(u64::from(heartbeat_ms.max(500)));
                    act.last_beat = branchline_actors::clock::now();
                    act.status.set_registered(true);
                    act.fetch_revocations(office.revocations, ctx);
                    act.office_told(office, ctx);
                    tracing::info!(server = %act.channel.addr(), "registered with the server");
                    act.flush(ctx);
                }
                Ok(other) => {
                    tracing::warn!(answer = ?other, "server refused registration; retrying in 2 s");
                    ctx.run_later(Duration::from_secs(2), |act, ctx| act.register(ctx));
                }
                Err(reason) => {
                    tracing::warn!(%reason, "registration failed; retrying in 2 s");
                    ctx.run_later(Duration::from_secs(2), |act, ctx| act.register(ctx));
                }
            }
        }));
    }

    /// The server told this client its office: keep it for status, and as
    /// the office's RVP pull what the office wants.
    fn office_told(&mut self, office: OfficeInfo, ctx: &mut Context<Self>) {
        self.catch_up_purges(office.purge_seq, ctx);
        if office.rvps.contains(&self.me.id)
            && !office.wanted.is_empty()
            && let Some(rvp) = &self.rvp
        {
            let _ = rvp.try_send(Wanted(office.wanted.clone()));
        }
        self.status.set_office(office);
    }

    /// Under the cluster PKI: the link's connection is closed if the
    /// server's certificate is revoked, and the server's revocation list is
    /// asked for when its answers say it is not the one in force here.
    pub fn guarded_by(self, trust: Option<Arc<Trust>>) -> Self {
        ServerLink {
            channel: self.channel.clone().guarded_by(trust.clone()),
            trust,
            ..self
        }
    }

    /// If the server has made purges this cache has not applied (`latest`,
    /// from its office info), asks for them, drops those contents, and
    /// records the number durably; however long the client was away, and
    /// whatever the clocks say. A server whose numbers went back (its
    /// data restored from an older backup) is asked for all of them again.
    fn catch_up_purges(&mut self, latest: u64, ctx: &mut Context<Self>) {
        if self.purging || self.purges_seen.is_some_and(|seen| seen == latest) {
            return;
        }
        self.purging = true;
        let (slot, store) = (self.channel.clone(), self.store.clone());
        let catch_up = async move {
            let mut seen = store
                .send(PurgesSeen)
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            if seen > latest {
                tracing::warn!(
                    seen,
                    latest,
                    "the server's purges go back; asking for all of them again"
                );
                seen = 0;
            }
            let mut dropped = Vec::new();
            while seen < latest {
                let (contents, last) =
                    match slot.call(ServerRequest::GetPurges { since: seen }).await {
                        Ok(ServerReply::Purges { contents, last }) => (contents, last),
                        Ok(other) => return Err(format!("unexpected answer {other:?}")),
                        Err(e) => return Err(e.to_string()),
                    };
                if last <= seen {
                    break;
                }
                store
                    .send(ApplyPurges {
                        contents: contents.clone(),
                        seen: last,
                    })
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                dropped.extend(contents);
                seen = last;
            }
            Ok::<_, String>((seen, dropped))
        };
        ctx.spawn(catch_up.into_actor(self).map(|result, act, _| {
            act.purging = false;
            match result {
                Ok((seen, dropped)) => {
                    act.purges_seen = Some(seen);
                    for id in dropped {
                        tracing::warn!(content = %id, "content purged on the server; dropped from the cache");
                        if let Some(office) = &act.office {
                            let _ = office.try_send(Purged(id));
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "catching up with the server's purges failed; trying again at the next heartbeat"),
            }
        }));
    }

    /// If the server's revocation list (`digest`, from its office info)
    /// is not the one in force here, asks for it and puts it in force.
    fn fetch_revocations(&mut self, digest: Option<[u8; 32]>, ctx: &mut Context<Self>) {
        let Some(trust) = self.trust.clone() else {
            return;
        };
        if digest.is_none_or(|digest| digest == trust.digest()) {
            return;
        }
        let slot = self.channel.clone();
        let ask = async move {
            let known = trust.list().1;
            match slot.call(ServerRequest::GetRevocations { known }).await {
                Ok(ServerReply::Revocations(Some(lists))) => {
                    let crls = lists.into_iter().map(CertificateRevocationListDer::from);
                    match trust.install(crls.collect()) {
                        Ok(true) => tracing::info!(
                            "took the server's revocation list; revoked peers are being disconnected"
                        ),
                        Ok(false) => {}
                        Err(e) => {
                            tracing::error!(error = %e, "the server's revocation list was refused; the previous one stays in force")
                        }
                    }
                }
                Ok(ServerReply::Revocations(None)) => {}
                Ok(other) => {
                    tracing::warn!(answer = ?other, "unexpected answer to a revocation list request")
                }
                Err(e) => tracing::debug!(error = %e, "asking for the revocation list failed"),
            }
        };
        ctx.spawn(ask.into_actor(self));
    }

    fn heartbeat(&mut self, ctx: &mut Context<Self>) {
        if !self.status.registered() {
            return;
        }
        self.last_beat = branchline_actors::clock::now();
        let (slot, id, source) = (self.channel.clone(), self.me.id, self.attributes.clone());
        let counters = self.counters.snapshot();
        let beat = async move {
            let attributes = tokio::task::spawn_blocking(move || source.read())
                .await
                .unwrap_or_default();
            let beat = ServerRequest::Heartbeat {
                id,
                attributes,
                counters,
            };
            slot.call(beat).await
        };
        ctx.spawn(beat.into_actor(self).map(
            |result, act, ctx| match result {
                Ok(ServerReply::Alive(office)) => {
                    act.fetch_revocations(office.revocations, ctx);
                    act.office_told(office, ctx);
                }
                Ok(ServerReply::UnknownClient) => act.register(ctx),
                Ok(other) => tracing::warn!(answer = ?other, "unexpected heartbeat answer"),
                Err(e) => {
                    tracing::warn!(error = %e, "heartbeat failed; will register again when the server answers");
                    act.status.set_registered(false);
                    act.register(ctx);
                }
            },
        ));
    }

    /// Sends pending have reports one at a time, newest map per content.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.flushing || self.pending_have.is_empty() || !self.status.registered() {
            return;
        }
        self.flushing = true;
        let batch: Vec<(ContentId, PieceMap)> = self.pending_have.drain().collect();
        let (slot, id) = (self.channel.clone(), self.me.id);
        let send = async move {
            for (i, (content, have)) in batch.iter().enumerate() {
                match slot
                    .call(ServerRequest::Have {
                        id,
                        content: *content,
                        have: have.clone(),
                    })
                    .await
                {
                    Ok(ServerReply::Ok) => {}
                    Ok(ServerReply::UnknownClient) => return Err((batch[i..].to_vec(), true)),
                    Ok(other) => tracing::warn!(answer = ?other, "server refused a have report"),
                    Err(e) => {
                        tracing::warn!(error = %e, "have report failed");
                        return Err((batch[i..].to_vec(), false));
                    }
                }
            }
            Ok(())
        };
        ctx.spawn(send.into_actor(self).map(|result, act, ctx| {
            act.flushing = false;
            match result {
                Ok(()) => act.flush(ctx),
                Err((unsent, unknown)) => {
                    for (content, have) in unsent {
                        act.pending_have.entry(content).or_insert(have);
                    }
                    if unknown {
                        act.register(ctx);
                    } else {
                        ctx.run_later(Duration::from_secs(1), |act, ctx| act.flush(ctx));
                    }
                }
            }
        }));
    }
}

impl Actor for ServerLink {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(LINK_MAILBOX);
        self.registering = false;
        self.flushing = false;
        self.register(ctx);
        // Beat at the interval the server asked for at registration (it may
        // be shorter than the default the link starts with).
        ctx.run_interval(HEARTBEAT_TICK, |act, ctx| {
            if branchline_actors::clock::now().duration_since(act.last_beat) >= act.heartbeat {
                act.heartbeat(ctx);
            }
        });
    }
}

branchline_actors::supervised_controls!(ServerLink);

impl Supervised for ServerLink {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!("server link restarting");
    }
}

impl Handler<ServerCall> for ServerLink {
    type Result = ResponseActFuture<Self, Result<ServerReply, LinkError>>;
    fn handle(&mut self, msg: ServerCall, _: &mut Context<Self>) -> Self::Result {
        branchline_actors::supervision::handled();
        let slot = self.channel.clone();
        Box::pin(
            async move { slot.call(msg.0).await }
                .into_actor(self)
                .map(|result, act, ctx| {
                    if let Ok(ServerReply::UnknownClient) = &result {
                        act.register(ctx);
                    }
                    result
                }),
        )
    }
}

impl Handler<ReportHave> for ServerLink {
    type Result = ();
    fn handle(&mut self, msg: ReportHave, ctx: &mut Context<Self>) {
        branchline_actors::supervision::handled();
        self.pending_have.insert(msg.content, msg.have);
        self.flush(ctx);
    }
}

/// Where to send the contents the office wants when this client is its RVP,
/// and the contents purged on the server (the RVP and office actors start
/// after the link).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct ConnectRvp(pub Recipient<Wanted>, pub Recipient<Purged>);

impl Handler<ConnectRvp> for ServerLink {
    type Result = ();
    fn handle(&mut self, msg: ConnectRvp, _: &mut Context<Self>) {
        branchline_actors::supervision::handled();
        self.rvp = Some(msg.0);
        self.office = Some(msg.1);
    }
}
