//! The directory: the server's front desk. It owns the topology (which
//! office an address is in, the tree, automatic offices) and the
//! catalogue of published contents, starts one [`OfficeActor`] per office
//! that has clients (and the offices above it), and sends each client's
//! request to its office's actor. It never does long work on its own
//! thread: a topology import is parsed, checked and stored on the blocking
//! pool and swapped in, in one step, once it is valid; then each office
//! hands the clients that belong elsewhere now, with their holdings, to
//! their new office.
//!
//! - [`topology_store`]: the topology in the metadata store.
//! - [`changes`]: publish and purge.
//! - [`views`]: the offices' reports put together for status.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use branchline_storage::meta_store::MetaError;
use branchline_storage::publication::{Publication, Signature, SignedPublication};
use branchline_storage::{
    ClientRecord, ContentId, MetaStore, NodeId, Origin, OriginKind, PieceMap,
};

use crate::server::catalogue::Catalogue;
use crate::server::meta_writer::MetaWriter;
use crate::server::office_actor::OfficeActor;
use crate::server::office_messages::{Adopt, ParentOffice, Replace, Resolve, Serve};
use crate::server::registry::{Moving, Registry, RegistryTiming};
use crate::server::seats::Seats;
use crate::supervision::ActorBook;
use crate::topology::{Topology, spreadsheet};
use crate::wire::{ServerReply, ServerRequest};
use topology_store::{TopologyWrites, import_and_store, load_topology, save_topology};

pub mod changes;
#[cfg(test)]
mod tests;
pub mod topology_store;
pub mod views;

/// Messages the directory's mailbox holds at most.
pub const DIRECTORY_MAILBOX: usize = 4096;
/// Where an earlier version kept the purges of the last day: (content, when
/// in Unix ms). Read once at start and turned into numbered purges.
const OLD_PURGES_SETTING: &str = "purges";
/// Purges told in one answer at most; a client that missed more asks again.
const PURGES_PER_ANSWER: usize = 1024;

/// Signs what the server vouches for about a content with the server's
/// key; `None` when the server runs without the cluster PKI.
pub type PublicationSigner = Arc<dyn Fn(&Publication) -> Option<Signature> + Send + Sync>;

/// What every office actor is made with.
#[derive(Clone)]
pub struct OfficeDeps {
    /// The registries' timing.
    pub timing: RegistryTiming,
    /// The cap on registered clients, shared.
    pub seats: Arc<Seats>,
    /// The heartbeat interval clients are told.
    pub heartbeat: Duration,
    /// Where offices are listed for the debug shell.
    pub book: ActorBook,
    /// The arbiters (threads) office actors are spread over, in turn; none:
    /// the directory's own.
    pub arbiters: Vec<ArbiterHandle>,
}

/// Stored clients and their holdings, of one office.
type Stored = (Vec<ClientRecord>, Vec<(ContentId, NodeId, PieceMap)>);

/// The directory actor.
pub struct DirectoryActor {
    topology: Arc<Topology>,
    catalogue: Arc<Catalogue>,
    offices: HashMap<String, Addr<OfficeActor>>,
    /// What the store kept, by office, for offices not started yet.
    stored: HashMap<String, Stored>,
    deps: OfficeDeps,
    store: Arc<MetaStore>,
    writer: MetaWriter,
    signer: PublicationSigner,
    /// An automatic office was made since the topology was last stored.
    topology_dirty: bool,
    persisting: bool,
    /// A topology import is being parsed, checked and stored off the
    /// actor's thread; another waits its turn by being refused, and the
    /// periodic save leaves the topology alone meanwhile.
    importing: bool,
    /// The number the next topology written gets.
    topology_number: u64,
    /// The newest topology written.
    topology_writes: Arc<TopologyWrites>,
}

/// Purges kept by an earlier version (a list with wall-clock times, told to
/// clients for a day) become numbered purges, oldest first, but for
/// contents published again since; then the list is removed.
fn migrate_old_purges(store: &MetaStore, catalogue: &Catalogue) -> Result<(), MetaError> {
    let Some(mut old) = store.setting::<Vec<(ContentId, u64)>>(OLD_PURGES_SETTING)? else {
        return Ok(());
    };
    old.sort_by_key(|(_, at_ms)| *at_ms);
    for (id, _) in old {
        if catalogue.get(&id).is_none() {
            store.purge_content(&id)?;
        }
    }
    store.remove_setting(OLD_PURGES_SETTING)?;
    tracing::info!("purges kept by an earlier version are numbered purges now");
    Ok(())
}

impl DirectoryActor {
    /// The directory as the store kept it: topology, published contents,
    /// and each office's clients and holdings (their offices start with
    /// the directory). `file_storage` is the base URL of the server's own
    /// file storage, if it runs one: origins published by an earlier
    /// version, which kept no kinds, are file storage if they are there or
    /// `file://`, and CDNs otherwise.
    pub fn new(
        deps: OfficeDeps,
        store: Arc<MetaStore>,
        signer: PublicationSigner,
        file_storage: Option<&str>,
    ) -> Result<Self, MetaError> {
        let mut catalogue = Catalogue::default();
        let confidential = store.confidential()?;
        for record in store.contents()? {
            let id = record.manifest.content_id();
            let secret = confidential.contains(&id);
            let kinds = store
                .origin_kinds(&id)?
                .filter(|kinds| kinds.len() == record.origins.len())
                .unwrap_or_else(|| {
                    let infer = |url: &String| OriginKind::infer(url, file_storage);
                    record.origins.iter().map(infer).collect()
                });
            let origins = record
                .origins
                .iter()
                .zip(kinds)
                .map(|(url, kind)| Origin {
                    url: url.clone(),
                    kind,
                })
                .collect();
            // Stored contents were accepted once; a conflict cannot be.
            let _ = catalogue.publish(record, origins, secret);
        }
        migrate_old_purges(&store, &catalogue)?;
        catalogue.purged_up_to(store.last_purge()?);
        let mut topology = load_topology(&store)?.unwrap_or_default();
        let mut topology_dirty = false;
        let mut stored: HashMap<String, Stored> = HashMap::new();
        let mut office_of: HashMap<NodeId, String> = HashMap::new();
        for record in store.clients()? {
            let (office, made) = topology.resolve_or_add(record.addr.ip());
            topology_dirty |= made;
            office_of.insert(record.id, office.name.clone());
            stored
                .entry(office.name.clone())
                .or_default()
                .0
                .push(record);
        }
        for (content, client, have) in store.holdings()? {
            if let Some(office) = office_of.get(&client) {
                stored
                    .entry(office.clone())
                    .or_default()
                    .1
                    .push((content, client, have));
            }
        }
        // A thread that cannot start is an I/O failure like the store's own.
        let writer =
            MetaWriter::start(store.clone()).map_err(|e| MetaError::Db(sled::Error::Io(e)))?;
        Ok(DirectoryActor {
            writer,
            topology: Arc::new(topology),
            catalogue: Arc::new(catalogue),
            offices: HashMap::new(),
            stored,
            deps,
            store,
            signer,
            topology_dirty,
            persisting: false,
            importing: false,
            topology_number: 0,
            topology_writes: Arc::default(),
        })
    }

    /// The actor of office `name`, started (with the offices above it) if
    /// it is not running yet; `None` if the topology has no such office.
    fn office(&mut self, name: &str, ctx: &mut Context<Self>) -> Option<Addr<OfficeActor>> {
        if let Some(addr) = self.offices.get(name) {
            return Some(addr.clone());
        }
        let spec = self.topology.office(name)?.clone();
        let parent = match &spec.parent {
            Some(parent) => self.office(parent, ctx).as_ref().map(ParentOffice::from),
            None => None,
        };
        let drawn_under = drawn_under(spec.parent.as_deref());
        let links_below = self.topology.links_below(name);
        let deps = &self.deps;
        let mut registry = Registry::new(
            deps.timing,
            spec,
            links_below,
            self.catalogue.clone(),
            deps.seats.clone(),
        );
        if let Some((clients, holdings)) = self.stored.remove(name) {
            registry.restore(clients, holdings, crate::clock::now());
        }
        let actor = OfficeActor::new(
            registry,
            parent,
            ctx.address().recipient(),
            (self.store.clone(), self.writer.clone()),
            deps.heartbeat,
        );
        let arbiter = deps
            .arbiters
            .get(self.offices.len() % deps.arbiters.len().max(1));
        let addr = deps.book.start_in(
            arbiter,
            "office",
            actor_name(name),
            drawn_under,
            move |_| actor,
        );
        self.offices.insert(name.to_owned(), addr.clone());
        Some(addr)
    }

    /// Tells every office something.
    fn tell_offices<M>(&self, message: impl Fn() -> M)
    where
        M: Message<Result = ()> + Send + 'static,
        OfficeActor: Handler<M>,
    {
        for addr in self.offices.values() {
            addr.do_send(message());
        }
    }

    /// The office of a client registering from `from`: the office that
    /// claims the address, or an automatic office made for it.
    fn office_of_newcomer(
        &mut self,
        from: std::net::IpAddr,
        ctx: &mut Context<Self>,
    ) -> Option<Addr<OfficeActor>> {
        let name = match self.topology.resolve(from) {
            Some(office) => office.name.clone(),
            None => {
                let (office, _) = Arc::make_mut(&mut self.topology).resolve_or_add(from);
                let name = office.name.clone();
                tracing::info!(office = %name, %from, "no office claims this address; made an automatic office");
                self.topology_dirty = true;
                name
            }
        };
        self.office(&name, ctx)
    }

    /// A content's record, with the server's signed word for how it may be
    /// shared, for a client at `from`. A client off the corporate network
    /// is given only the CDN origins.
    fn content_reply(&self, content: ContentId, from: std::net::IpAddr) -> ServerReply {
        let Some(published) = self.catalogue.get(&content) else {
            return ServerReply::NotFound;
        };
        let off_network = self
            .topology
            .resolve(from)
            .is_some_and(crate::topology::Office::is_off_network);
        let record = match off_network {
            true => published.off_network(),
            false => (*published.record).clone(),
        };
        let publication = Publication {
            content,
            confidential: published.confidential,
        };
        let signature = (self.signer)(&publication);
        ServerReply::Content(
            record,
            SignedPublication {
                publication,
                signature,
            },
        )
    }

    /// The purges after number `since` (read off the actor's thread),
    /// leaving out contents published again since.
    fn purges_since(&self, since: u64) -> ResponseActFuture<Self, ServerReply> {
        let store = self.store.clone();
        let read =
            tokio::task::spawn_blocking(move || store.purges_since(since, PURGES_PER_ANSWER));
        Box::pin(read.into_actor(self).map(move |result, act, _| {
            match result {
                Ok(Ok(purges)) => ServerReply::Purges {
                    last: purges.last().map_or(since, |(seq, _)| *seq),
                    contents: purges
                        .into_iter()
                        .map(|(_, id)| id)
                        .filter(|id| act.catalogue.get(id).is_none())
                        .collect(),
                },
                Ok(Err(e)) => ServerReply::Error(format!("reading the purges failed: {e}")),
                Err(e) => ServerReply::Error(format!("reading the purges failed: {e}")),
            }
        }))
    }

    fn next_topology_number(&mut self) -> u64 {
        self.topology_number += 1;
        self.topology_number
    }

    /// Stores the topology if an automatic office was made since, unless
    /// an import is under way (its topology is newer).
    fn persist_topology(&mut self, ctx: &mut Context<Self>) {
        if !self.topology_dirty || self.importing || self.persisting {
            return;
        }
        self.topology_dirty = false;
        self.persisting = true;
        let (store, topology) = (self.store.clone(), self.topology.clone());
        let (number, writes) = (self.next_topology_number(), self.topology_writes.clone());
        let job = tokio::task::spawn_blocking(move || {
            save_topology(&store, &topology, number, &writes)?;
            store.flush()
        });
        ctx.spawn(job.into_actor(self).map(|result, act, _| {
            act.persisting = false;
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    act.topology_dirty = true;
                    tracing::error!(error = %e, "storing the topology failed");
                }
                Err(e) => {
                    act.topology_dirty = true;
                    tracing::error!(error = %e, "topology persist worker failed");
                }
            }
        }));
    }

    /// Swaps in an imported topology (stored already): every office learns
    /// its new place, hands over the clients that belong elsewhere now
    /// with what they hold, and their new offices take them in.
    fn apply_topology(&mut self, topology: Topology, ctx: &mut Context<Self>) {
        self.topology = Arc::new(topology);
        let names: Vec<String> = self.offices.keys().cloned().collect();
        let mut replies = Vec::with_capacity(names.len());
        for name in names {
            let spec = self.topology.office(&name).cloned();
            let parent = spec
                .as_ref()
                .and_then(|s| s.parent.clone())
                .and_then(|p| self.office(&p, ctx))
                .as_ref()
                .map(ParentOffice::from);
            let above = spec.as_ref().and_then(|s| s.parent.as_deref());
            self.deps
                .book
                .reparent(&actor_name(&name), drawn_under(above));
            let place = spec.map(|s| (s, self.topology.links_below(&name)));
            replies.push(self.offices[&name].send(Replace {
                spec: place,
                parent,
                topology: self.topology.clone(),
            }));
        }
        let handed = futures_util::future::join_all(replies);
        ctx.spawn(handed.into_actor(self).map(|results, act, ctx| {
            let mut by_office: HashMap<String, Vec<Moving>> = HashMap::new();
            for moving in results.into_iter().flat_map(Result::unwrap_or_default) {
                let (office, made) = Arc::make_mut(&mut act.topology).resolve_or_add(moving.addr);
                act.topology_dirty |= made;
                by_office
                    .entry(office.name.clone())
                    .or_default()
                    .push(moving);
            }
            for (name, movers) in by_office {
                if let Some(addr) = act.office(&name, ctx) {
                    addr.do_send(Adopt(movers));
                }
            }
        }));
    }
}

impl Actor for DirectoryActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(DIRECTORY_MAILBOX);
        let kept: Vec<String> = self.stored.keys().cloned().collect();
        for name in kept {
            self.office(&name, ctx);
        }
        ctx.run_interval(Duration::from_secs(1), |act, ctx| act.persist_topology(ctx));
    }
}

crate::supervised_controls!(DirectoryActor);

impl Supervised for DirectoryActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!("directory actor restarting; the offices go on");
        self.persisting = false;
        self.importing = false;
    }
}

impl Handler<Serve> for DirectoryActor {
    type Result = ResponseActFuture<Self, ServerReply>;
    fn handle(&mut self, msg: Serve, ctx: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        let ready = |reply| -> Self::Result { Box::pin(actix::fut::ready(reply)) };
        let office = match &msg.request {
            ServerRequest::GetPurges { since } => return self.purges_since(*since),
            ServerRequest::GetContent { content } => {
                return ready(self.content_reply(*content, msg.from.ip()));
            }
            // The control endpoint answers it; the directory keeps no list.
            ServerRequest::GetRevocations { .. } => return ready(ServerReply::Revocations(None)),
            // The control endpoint answers it, where the cluster CA is.
            ServerRequest::Join(_) => {
                return ready(ServerReply::Error("joining is not open here".into()));
            }
            ServerRequest::Register(_) => self.office_of_newcomer(msg.from.ip(), ctx),
            _ => self
                .topology
                .resolve(msg.from.ip())
                .and_then(|o| self.offices.get(&o.name))
                .cloned(),
        };
        // A client of no running office registers again.
        let Some(office) = office else {
            return ready(ServerReply::UnknownClient);
        };
        let sent = office.send(msg);
        Box::pin(
            async move {
                sent.await.unwrap_or_else(|e| {
                    ServerReply::Error(format!("the client's office is unavailable: {e}"))
                })
            }
            .into_actor(self),
        )
    }
}

impl Handler<Resolve> for DirectoryActor {
    type Result = MessageResult<Resolve>;
    fn handle(&mut self, msg: Resolve, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        MessageResult(
            msg.0
                .into_iter()
                .map(|addr| self.topology.resolve(addr).map(|o| o.name.clone()))
                .collect(),
        )
    }
}

/// The name an office's actor goes by in the node's actor book and the
/// debug shell (`kill office-hq`).
fn actor_name(office: &str) -> String {
    format!("office-{office}")
}

/// What an office's actor is drawn under in the actor tree: the actor of
/// the office above, or the directory for a top office.
fn drawn_under(parent_office: Option<&str>) -> String {
    parent_office.map_or_else(|| "directory".to_owned(), actor_name)
}

/// Replaces the topology with a spreadsheet, all or nothing; durable when
/// answered. The answer is the number of offices, or every problem found.
///
/// Parsing, the checks (the overlap check of every block) and the write
/// run on the blocking pool, never on the directory's thread: heartbeats
/// and sources answers go on while a large sheet is imported, and the new
/// topology is swapped in, in one step, only once it is valid and stored.
/// One import at a time: another one meanwhile is refused.
#[derive(Debug, Message)]
#[rtype(result = "Result<u32, Vec<String>>")]
pub struct ImportTopology(pub Vec<u8>);

impl Handler<ImportTopology> for DirectoryActor {
    type Result = ResponseActFuture<Self, Result<u32, Vec<String>>>;
    fn handle(&mut self, msg: ImportTopology, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        if self.importing {
            return Box::pin(actix::fut::ready(Err(vec![
                "another topology import is in progress; try again when it is done".to_owned(),
            ])));
        }
        self.importing = true;
        tracing::info!(
            bytes = msg.0.len(),
            "topology import started; the sheet is parsed and checked off the directory's thread"
        );
        let store = self.store.clone();
        let (number, writes) = (self.next_topology_number(), self.topology_writes.clone());
        // A panic in the import leaves the directory as it was: nothing to
        // restart, and the answer names it.
        let work = crate::panics::run_blocking(
            || {},
            move || import_and_store(&store, &msg.0, number, &writes),
        );
        Box::pin(work.into_actor(self).map(move |result, act, ctx| {
            act.importing = false;
            let topology = match result {
                Ok(imported) => imported?,
                Err(e) => return Err(vec![format!("the import stopped: {e}")]),
            };
            let offices = u32::try_from(topology.offices().len()).unwrap_or(u32::MAX);
            act.apply_topology(topology, ctx);
            tracing::info!(offices, "topology imported");
            Ok(offices)
        }))
    }
}

/// The topology as a spreadsheet.
#[derive(Debug, Message)]
#[rtype(result = "String")]
pub struct ExportTopology;

impl Handler<ExportTopology> for DirectoryActor {
    type Result = String;
    fn handle(&mut self, _: ExportTopology, _: &mut Context<Self>) -> String {
        crate::supervision::handled();
        spreadsheet::export(&self.topology)
    }
}
