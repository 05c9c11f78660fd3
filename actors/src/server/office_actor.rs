//! One office on the server, as an actor: its [`Registry`] behind a
//! bounded mailbox, its holdings persisted to the [`MetaStore`], and what
//! needs the offices above carried actor to actor.
//!
//! - A client's requests come here from the directory, which resolved its
//!   office from its address.
//! - A client crossing the WAN needs the peers of the nearest office above
//!   with clients that serve: [`AskUpstream`] goes to the parent office,
//!   which answers or passes it up. The office that answered tells the
//!   asking office when the content's holdings there move
//!   ([`UpstreamMoved`]), which wakes the asking office's long-polls.
//! - "This office wants X" goes up the tree ([`Wanted`]) so each RVP on the
//!   way pulls X; a report that a peer stopped answering goes up until the
//!   peer's office ([`Suspect`]).
//! - `Sources` queries whose answer would change nothing for the asker
//!   wait (long-poll) on a watch channel per content until its version
//!   moves and the answer changes something, or the wait ends.
//! - Registrations and holdings are written in batches once a second,
//!   through the server's one [`MetaWriter`].
//! - Supervision restarts the office in place: it forgets its state, which
//!   a panic may have left half-changed, and rebuilds it from the store
//!   (its clients then report what they hold again). Other offices never
//!   notice.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use branchline_storage::meta_store::MetaError;
use branchline_storage::records::unix_ms;
use branchline_storage::{ContentId, MetaStore};
use tokio::sync::watch;

use crate::server::meta_writer::MetaWriter;
use crate::server::office_messages::{
    Adopt, AskUpstream, GetReport, ParentOffice, Replace, Resolve, Serve, SetCatalogue, Suspect,
    UpstreamMoved, Wanted,
};
use crate::server::registry::{Registry, RegistryError, Reported, Upstream};
use crate::wire::{ServerReply, ServerRequest, SourcesQuery};

/// Messages an office's mailbox holds at most.
pub const OFFICE_MAILBOX: usize = 1024;
/// Longest long-poll a client may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(5);
/// How long an office below is told of changes to a content after it last
/// asked for this office's peers of it.
const TELL_BELOW_FOR: Duration = Duration::from_secs(120);

impl From<&Addr<OfficeActor>> for ParentOffice {
    fn from(office: &Addr<OfficeActor>) -> Self {
        ParentOffice {
            ask: office.clone().recipient(),
            wanted: office.clone().recipient(),
            suspect: office.clone().recipient(),
        }
    }
}

/// One office on the server.
pub struct OfficeActor {
    registry: Registry,
    parent: Option<ParentOffice>,
    directory: Recipient<Resolve>,
    store: Arc<MetaStore>,
    writer: MetaWriter,
    heartbeat: Duration,
    watchers: HashMap<ContentId, watch::Sender<u64>>,
    /// Offices below that took this office's peers of a content, and when
    /// they last asked: told when its version moves.
    below: HashMap<ContentId, HashMap<String, (Recipient<UpstreamMoved>, Instant)>>,
    /// The version of each content the offices below were last told of.
    told_below: HashMap<ContentId, u64>,
    persisting: bool,
    /// The client count the actor tree shows, as last told.
    noted_clients: Option<usize>,
}

impl OfficeActor {
    /// The office of `registry` (restored already), under `parent`; it
    /// reads `store` when it rebuilds itself and persists through
    /// `writer`.
    pub fn new(
        registry: Registry,
        parent: Option<ParentOffice>,
        directory: Recipient<Resolve>,
        (store, writer): (Arc<MetaStore>, MetaWriter),
        heartbeat: Duration,
    ) -> Self {
        OfficeActor {
            registry,
            parent,
            directory,
            store,
            writer,
            heartbeat,
            watchers: HashMap::new(),
            below: HashMap::new(),
            told_below: HashMap::new(),
            persisting: false,
            noted_clients: None,
        }
    }

    /// Wakes the long-polls of every content whose version moved, and
    /// tells the offices below that took its peers.
    fn wake_watchers(&mut self) {
        let registry = &self.registry;
        self.watchers.retain(|content, tx| {
            if let Some(v) = registry.version(content) {
                tx.send_if_modified(|old| std::mem::replace(old, v) != v);
            }
            tx.receiver_count() > 0
        });
        let now = crate::clock::now();
        for (content, offices) in &mut self.below {
            let Some(version) = registry.version(content) else {
                continue;
            };
            if self.told_below.insert(*content, version) == Some(version) {
                continue;
            }
            offices.retain(|_, (notify, at)| {
                now.duration_since(*at) < TELL_BELOW_FOR
                    && notify.try_send(UpstreamMoved(*content)).is_ok()
            });
        }
        self.below.retain(|_, offices| !offices.is_empty());
    }

    /// Tells the office how many offices below took from it lately
    /// (their clients may report its members): when one asks, and at each
    /// tick as the others age, not at every request the office serves.
    fn count_takers_below(&mut self) {
        let now = crate::clock::now();
        let offices: HashSet<&String> = self
            .below
            .values()
            .flat_map(|offices| offices.iter())
            .filter(|(_, (_, at))| now.duration_since(*at) < TELL_BELOW_FOR)
            .map(|(office, _)| office)
            .collect();
        self.registry.set_takers_below(offices.len());
    }

    fn persist(&mut self, ctx: &mut Context<Self>) {
        if self.persisting {
            return;
        }
        let dirty = self.registry.take_dirty();
        if dirty.clients.is_empty() && dirty.removed.is_empty() && dirty.holdings.is_empty() {
            return;
        }
        self.persisting = true;
        let written = self.writer.write(dirty);
        ctx.spawn(written.into_actor(self).map(|result, act, _| {
            act.persisting = false;
            let error = match result {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e,
                Err(_) => crate::server::meta_writer::WriteError::Stopped,
            };
            tracing::error!(office = %act.registry.office(), error = %error, "persisting the office failed");
        }));
    }

    /// Forgets the office's state and reloads its clients and their
    /// holdings from the store, asking the directory which stored clients
    /// are this office's.
    fn rebuild(&mut self, ctx: &mut Context<Self>) {
        self.registry.forget_all();
        self.watchers.clear();
        self.below.clear();
        self.told_below.clear();
        self.persisting = false;
        self.noted_clients = None;
        let store = self.store.clone();
        let directory = self.directory.clone();
        let office = self.registry.office().to_owned();
        let load = async move {
            let stored = tokio::task::spawn_blocking(move || -> Result<_, MetaError> {
                Ok((store.clients()?, store.holdings()?))
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            let addrs = stored.0.iter().map(|c| c.addr.ip()).collect();
            let offices = directory
                .send(Resolve(addrs))
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((stored, offices))
        };
        ctx.spawn(load.into_actor(self).map(move |loaded, act, _| {
            let ((clients, holdings), offices) = match loaded {
                Ok(loaded) => loaded,
                Err(e) => {
                    tracing::error!(%office, error = %e, "rebuilding the office from the store failed; its clients register again");
                    return;
                }
            };
            let mine: Vec<_> = clients
                .into_iter()
                .zip(offices)
                .filter(|(_, o)| o.as_deref() == Some(office.as_str()))
                .map(|(c, _)| c)
                .collect();
            let count = mine.len();
            act.registry.restore(mine, holdings, crate::clock::now());
            tracing::info!(%office, clients = count, "office rebuilt from the store");
        }));
    }

    fn serve(&mut self, request: ServerRequest, from: SocketAddr) -> ServerReply {
        let now = crate::clock::now();
        let reply = match request {
            ServerRequest::Register(reg) => {
                let id = reg.id;
                let (name, addr, contents) = (reg.name.clone(), reg.addr, reg.holdings.len());
                if reg.addr.ip() != from.ip() {
                    tracing::warn!(client = %id, claimed = %reg.addr.ip(), seen = %from.ip(), "a client advertises another address than its packets come from; its office follows the address the server sees");
                }
                match self.registry.register(reg, from.ip(), unix_ms(), now) {
                    Err(e) => {
                        tracing::warn!(client = %id, %from, error = %e, "registration refused");
                        error_reply(e)
                    }
                    Ok(()) => {
                        let office = self
                            .registry
                            .office_info(&id, now)
                            .expect("a client that just registered has an office");
                        tracing::info!(client = %id, %name, %addr, %from, contents, office = %office.name, "client registered");
                        ServerReply::Registered {
                            heartbeat_ms: u32::try_from(self.heartbeat.as_millis())
                                .unwrap_or(u32::MAX),
                            office,
                        }
                    }
                }
            }
            ServerRequest::Heartbeat {
                id,
                attributes,
                counters,
            } => match self.registry.heartbeat_with(&id, attributes, counters, now) {
                Some(office) => ServerReply::Alive(office),
                None => ServerReply::UnknownClient,
            },
            ServerRequest::Have { id, content, have } => {
                match self.registry.report_have(id, content, have, now) {
                    Ok(()) => ServerReply::Ok,
                    Err(e) => error_reply(e),
                }
            }
            ServerRequest::Banned { id, peer, evidence } => {
                if self.registry.report_ban(id, peer, evidence, now) {
                    ServerReply::Ok
                } else {
                    ServerReply::UnknownClient
                }
            }
            ServerRequest::Unresponsive { id, peer } => {
                match self.registry.report_unresponsive(id, peer, now) {
                    Reported::UnknownReporter => ServerReply::UnknownClient,
                    Reported::Counted => ServerReply::Ok,
                    Reported::NotHere => {
                        if let Some(parent) = &self.parent {
                            parent.suspect.do_send(Suspect { peer, reporter: id });
                        }
                        ServerReply::Ok
                    }
                }
            }
            ServerRequest::Leave { id } => {
                if self.registry.leave(id, now) {
                    tracing::info!(client = %id, "client left");
                    ServerReply::Ok
                } else {
                    ServerReply::UnknownClient
                }
            }
            // The directory answers the rest before it sends a request on.
            _ => ServerReply::Error("an office does not answer this request".into()),
        };
        self.wake_watchers();
        reply
    }

    /// Answers a sources query at once if the answer changes anything for
    /// the asker, and otherwise waits for the content's version to move
    /// (and asks again) until `deadline`. `asked` is the version the asker
    /// last saw, which the answer it gets is a delta against.
    fn answer_or_wait(
        &mut self,
        ctx: &mut Context<Self>,
        query: SourcesQuery,
        asked: u64,
        deadline: Instant,
    ) -> ResponseActFuture<Self, ServerReply> {
        let route = match self.registry.begin_sources(&query, crate::clock::now()) {
            Ok(route) => route,
            Err(e) => {
                self.wake_watchers();
                return Box::pin(actix::fut::ready(error_reply(e)));
            }
        };
        if route.tell_above
            && let Some(parent) = &self.parent
        {
            parent.wanted.do_send(Wanted(query.content));
        }
        let above = match (&self.parent, route.plan.asks_above) {
            (Some(parent), true) => Some(parent.ask.send(AskUpstream {
                content: query.content,
                asker: query.id,
                banned: self.registry.banned(),
                below: self.registry.office().to_owned(),
                notify: ctx.address().recipient(),
            })),
            _ => None,
        };
        let mut plan = route.plan;
        Box::pin(
            async move {
                match above {
                    Some(asked) => asked.await.ok().flatten(),
                    None => None,
                }
            }
            .into_actor(self)
            .then(move |upstream, act, _| {
                plan.settle(upstream.as_ref().map(|u| u.office.clone()));
                act.finish_or_wait(query, asked, deadline, &plan, upstream)
            }),
        )
    }

    fn finish_or_wait(
        &mut self,
        mut query: SourcesQuery,
        asked: u64,
        deadline: Instant,
        plan: &crate::server::offices::SourcePlan,
        upstream: Option<Upstream>,
    ) -> ResponseActFuture<Self, ServerReply> {
        let now = crate::clock::now();
        let reply = match self.registry.finish_sources(&query, plan, upstream, now) {
            Ok(a) => ServerReply::Sources(a.rebased(query.since, asked)),
            Err(e) => error_reply(e),
        };
        self.wake_watchers();
        let version = match &reply {
            ServerReply::Sources(a) if a.changes_nothing() && now < deadline => a.version,
            _ => return Box::pin(actix::fut::ready(reply)),
        };
        // The empty answer is the asker's last one now; leases given back
        // were taken back.
        query.since = version;
        query.release.clear();
        let mut rx = self
            .watchers
            .entry(query.content)
            .or_insert_with(|| watch::channel(version).0)
            .subscribe();
        let waiting = async move {
            let _ = tokio::time::timeout(deadline - now, rx.wait_for(|v| *v != version)).await;
        };
        Box::pin(
            waiting
                .into_actor(self)
                .then(move |(), act, ctx| act.answer_or_wait(ctx, query, asked, deadline)),
        )
    }
}

/// How often an office expires silent clients and persists its changes.
const TICK: Duration = Duration::from_secs(1);

/// Where in [`TICK`] office `name` ticks: spread by its name's hash.
fn tick_phase(name: &str) -> Duration {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    name.hash(&mut h);
    let tick_ms = u64::try_from(TICK.as_millis()).unwrap_or(1000);
    Duration::from_millis(h.finish() % tick_ms)
}

fn error_reply(e: RegistryError) -> ServerReply {
    match e {
        RegistryError::UnknownClient(_) => ServerReply::UnknownClient,
        other => ServerReply::Error(other.to_string()),
    }
}

impl Actor for OfficeActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(OFFICE_MAILBOX);
        // Each office ticks at its own phase of the second, so the sweeps of
        // a thousand offices never land on an arbiter at once. (Measured
        // with 1,000 offices it changed nothing: the tail that made us
        // suspect the ticks was the first congestion window,
        // `BENCHMARKS.md`, C2.)
        ctx.run_later(tick_phase(self.registry.office()), |_, ctx| {
            ctx.run_interval(TICK, |act, ctx| {
                for id in act.registry.expire(crate::clock::now()) {
                    tracing::info!(client = %id, office = %act.registry.office(), "client expired: no heartbeat");
                }
                act.wake_watchers();
                act.count_takers_below();
                act.persist(ctx);
                act.note_clients();
            });
        });
    }
}

crate::supervised_controls!(OfficeActor);

impl Supervised for OfficeActor {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        tracing::warn!(office = %self.registry.office(), "office actor restarting; rebuilding it from the store");
        self.rebuild(ctx);
    }
}

impl OfficeActor {
    /// Tells the actor tree how many clients the office has, when that
    /// changed (its sessions are rows, not actors of their own).
    fn note_clients(&mut self) {
        let count = self.registry.client_count();
        if self.noted_clients != Some(count) {
            self.noted_clients = Some(count);
            crate::supervision::note(format!("{count} clients"));
        }
    }
}

impl Handler<Serve> for OfficeActor {
    type Result = ResponseActFuture<Self, ServerReply>;
    fn handle(&mut self, msg: Serve, ctx: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        let ServerRequest::Sources(query) = msg.request else {
            let reply = self.serve(msg.request, msg.from);
            self.note_clients();
            return Box::pin(actix::fut::ready(reply));
        };
        let wait = Duration::from_millis(u64::from(query.wait_ms)).min(MAX_WAIT);
        let asked = query.since;
        self.answer_or_wait(ctx, query, asked, crate::clock::now() + wait)
    }
}

impl Handler<AskUpstream> for OfficeActor {
    type Result = ResponseFuture<Option<Upstream>>;
    fn handle(&mut self, msg: AskUpstream, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        let now = crate::clock::now();
        match self
            .registry
            .upstream_sources(&msg.content, &msg.asker, &msg.banned, now)
        {
            Some(upstream) => {
                if let Some(version) = self.registry.version(&msg.content) {
                    self.told_below.entry(msg.content).or_insert(version);
                }
                self.below
                    .entry(msg.content)
                    .or_default()
                    .insert(msg.below, (msg.notify, now));
                self.count_takers_below();
                Box::pin(async move { Some(upstream) })
            }
            None => match &self.parent {
                Some(parent) => {
                    let asked = parent.ask.send(msg);
                    Box::pin(async move { asked.await.ok().flatten() })
                }
                None => Box::pin(async { None }),
            },
        }
    }
}

impl Handler<UpstreamMoved> for OfficeActor {
    type Result = ();
    fn handle(&mut self, msg: UpstreamMoved, _: &mut Context<Self>) {
        crate::supervision::handled();
        self.registry.upstream_moved(&msg.0);
        self.wake_watchers();
    }
}

impl Handler<Wanted> for OfficeActor {
    type Result = ();
    fn handle(&mut self, msg: Wanted, _: &mut Context<Self>) {
        crate::supervision::handled();
        if self.registry.note_wanted(msg.0, crate::clock::now())
            && let Some(parent) = &self.parent
        {
            parent.wanted.do_send(msg);
        }
    }
}

impl Handler<Suspect> for OfficeActor {
    type Result = ();
    fn handle(&mut self, msg: Suspect, _: &mut Context<Self>) {
        crate::supervision::handled();
        if self
            .registry
            .suspect(msg.peer, msg.reporter, crate::clock::now())
        {
            self.wake_watchers();
        } else if let Some(parent) = &self.parent {
            parent.suspect.do_send(msg);
        }
    }
}

impl Handler<SetCatalogue> for OfficeActor {
    type Result = ();
    fn handle(&mut self, msg: SetCatalogue, _: &mut Context<Self>) {
        crate::supervision::handled();
        self.registry.set_catalogue(msg.0);
        self.wake_watchers();
    }
}

impl Handler<Replace> for OfficeActor {
    type Result = MessageResult<Replace>;
    fn handle(&mut self, msg: Replace, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        self.parent = msg.parent;
        let office = self.registry.office().to_owned();
        let leavers = match msg.spec {
            Some((spec, links_below)) => {
                self.registry.set_spec(spec, links_below);
                let topology = msg.topology;
                self.registry
                    .take_leavers(|addr| topology.resolve(addr).is_some_and(|o| o.name == office))
            }
            None => self.registry.take_leavers(|_| false),
        };
        self.wake_watchers();
        MessageResult(leavers)
    }
}

impl Handler<Adopt> for OfficeActor {
    type Result = ();
    fn handle(&mut self, msg: Adopt, _: &mut Context<Self>) {
        crate::supervision::handled();
        let now = crate::clock::now();
        for moving in msg.0 {
            tracing::info!(client = %moving.record.id, office = %self.registry.office(), "client moved to this office with what it holds");
            self.registry.adopt(moving, now);
        }
        self.wake_watchers();
    }
}

impl Handler<GetReport> for OfficeActor {
    type Result = MessageResult<GetReport>;
    fn handle(&mut self, _: GetReport, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        MessageResult(self.registry.report(crate::clock::now()))
    }
}
