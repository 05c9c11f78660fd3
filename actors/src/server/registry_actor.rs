//! The registry actor: the server's [`Registry`] behind a bounded mailbox,
//! persisted to the [`MetaStore`] on a blocking thread.
//!
//! - Publishes are written and flushed before they are acknowledged.
//! - Registrations and holdings are written in batches once a second; after
//!   a crash the clients' registrations carry their holdings again.
//! - `Sources` queries whose answer would change nothing for the asker
//!   wait (long-poll) on a watch channel per content until its version
//!   moves and the answer changes something, or the wait ends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use branchline_storage::meta_store::MetaError;
use branchline_storage::publication::{Publication, Signature, SignedPublication};
use branchline_storage::records::{self, unix_ms};
use branchline_storage::{ContentId, ContentRecord, Manifest, MetaStore};
use tokio::sync::watch;

use crate::server::registry::{Registry, RegistryError};
use crate::topology::{Topology, spreadsheet};
use crate::wire::{RegistryView, ServerReply, ServerRequest, SourcesQuery, TopologyView};

/// Messages the registry's mailbox holds at most.
pub const REGISTRY_MAILBOX: usize = 1024;
/// The name the topology is stored under.
const TOPOLOGY_SETTING: &str = "topology";
/// The name its offices' link settings are stored under (the stored form
/// of the topology predates them).
const LINKS_SETTING: &str = "topology-links";
/// Where an earlier version kept the purges of the last day: (content, when
/// in Unix ms). Read once at start and turned into numbered purges.
const OLD_PURGES_SETTING: &str = "purges";

/// Purges kept by an earlier version (a list with wall-clock times, told to
/// clients for a day) become numbered purges, oldest first, but for
/// contents published again since; then the list is removed.
fn migrate_old_purges(store: &MetaStore, registry: &Registry) -> Result<(), MetaError> {
    let Some(mut old) = store.setting::<Vec<(ContentId, u64)>>(OLD_PURGES_SETTING)? else {
        return Ok(());
    };
    old.sort_by_key(|(_, at_ms)| *at_ms);
    for (id, _) in old {
        if registry.content(&id).is_none() {
            store.purge_content(&id)?;
        }
    }
    store.remove_setting(OLD_PURGES_SETTING)?;
    tracing::info!("purges kept by an earlier version are numbered purges now");
    Ok(())
}

/// The number of the newest topology written to the store. Topologies are
/// numbered on the registry's thread, in the order they were made, and
/// written on the blocking pool, where two writes (an import's, and the
/// periodic save of an automatic office) may finish in any order: the
/// newest one is the one kept.
#[derive(Debug, Default)]
struct TopologyWrites(std::sync::Mutex<u64>);

/// Stores the topology with its link settings, both or neither, unless a
/// newer topology (a higher `number`) is stored already.
fn save_topology(
    store: &MetaStore,
    topology: &Topology,
    number: u64,
    written: &TopologyWrites,
) -> Result<(), MetaError> {
    let mut newest = crate::lock_unpoisoned(&written.0);
    if number < *newest {
        return Ok(());
    }
    store.put_encoded_settings(vec![
        (TOPOLOGY_SETTING, records::encode(topology)),
        (LINKS_SETTING, records::encode(&topology.links())),
    ])?;
    *newest = number;
    Ok(())
}

/// The stored topology with its link settings, if one was stored.
fn load_topology(store: &MetaStore) -> Result<Option<Topology>, MetaError> {
    let Some(mut topology) = store.setting::<Topology>(TOPOLOGY_SETTING)? else {
        return Ok(None);
    };
    topology.set_links(store.setting(LINKS_SETTING)?.unwrap_or_default());
    Ok(Some(topology))
}
/// Longest long-poll a client may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(5);

/// Signs what the server vouches for about a content with the server's
/// key; `None` when the server runs without the cluster PKI.
pub type PublicationSigner = Arc<dyn Fn(&Publication) -> Option<Signature> + Send + Sync>;

/// The registry actor.
pub struct RegistryActor {
    registry: Registry,
    signer: PublicationSigner,
    store: Arc<MetaStore>,
    heartbeat: Duration,
    watchers: HashMap<ContentId, watch::Sender<u64>>,
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

impl RegistryActor {
    /// A registry restored from `store`.
    pub fn new(
        mut registry: Registry,
        store: Arc<MetaStore>,
        heartbeat: Duration,
        signer: PublicationSigner,
    ) -> Result<Self, MetaError> {
        let now = Instant::now();
        let confidential = store.confidential()?;
        let contents = store.contents()?.into_iter().map(|record| {
            let secret = confidential.contains(&record.manifest.content_id());
            (record, secret)
        });
        registry.restore(
            contents.collect(),
            store.clients()?,
            store.holdings()?,
            load_topology(&store)?,
            now,
        );
        migrate_old_purges(&store, &registry)?;
        registry.purged_up_to(store.last_purge()?);
        Ok(RegistryActor {
            registry,
            signer,
            store,
            heartbeat,
            watchers: HashMap::new(),
            persisting: false,
            importing: false,
            topology_number: 0,
            topology_writes: Arc::default(),
        })
    }

    fn wake_watchers(&mut self) {
        let registry = &self.registry;
        self.watchers.retain(|content, tx| {
            if let Some(v) = registry.version(content) {
                tx.send_if_modified(|old| std::mem::replace(old, v) != v);
            }
            tx.receiver_count() > 0
        });
    }

    fn persist(&mut self, ctx: &mut Context<Self>) {
        if self.persisting {
            return;
        }
        let mut dirty = self.registry.take_dirty();
        if self.importing && dirty.topology.take().is_some() {
            // The import's topology is newer: saved after it, if still so.
            self.registry.keep_topology_dirty();
        }
        let topology_number = self.next_topology_number();
        let writes = self.topology_writes.clone();
        if dirty.clients.is_empty()
            && dirty.removed.is_empty()
            && dirty.holdings.is_empty()
            && dirty.topology.is_none()
        {
            return;
        }
        self.persisting = true;
        let store = self.store.clone();
        let job = tokio::task::spawn_blocking(move || -> Result<(), MetaError> {
            for id in &dirty.removed {
                store.remove_client(id)?;
            }
            for client in &dirty.clients {
                store.put_client(client)?;
            }
            for (content, client, have) in &dirty.holdings {
                store.put_holding(content, client, have)?;
            }
            if let Some(topology) = &dirty.topology {
                save_topology(&store, topology, topology_number, &writes)?;
            }
            store.flush()
        });
        ctx.spawn(job.into_actor(self).map(|result, act, _| {
            act.persisting = false;
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "persisting the registry failed"),
                Err(e) => tracing::error!(error = %e, "registry persist worker failed"),
            }
        }));
    }

    fn next_topology_number(&mut self) -> u64 {
        self.topology_number += 1;
        self.topology_number
    }

    fn sources_reply(&mut self, query: &SourcesQuery) -> ServerReply {
        let reply = match self.registry.sources(query, Instant::now()) {
            Ok(answer) => ServerReply::Sources(answer),
            Err(e) => error_reply(e),
        };
        self.wake_watchers();
        reply
    }

    fn serve(&mut self, request: ServerRequest, from: SocketAddr) -> ServerReply {
        let now = Instant::now();
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
            // The control endpoint answers it; the registry keeps no list.
            ServerRequest::GetRevocations { .. } => ServerReply::Revocations(None),
            // The control endpoint answers it, where the cluster CA is.
            ServerRequest::Join(_) => ServerReply::Error("joining is not open here".into()),
            // Answered by the handler, off this thread.
            ServerRequest::GetPurges { .. } => {
                ServerReply::Error("purges are read elsewhere".into())
            }
            ServerRequest::GetContent { content } => match self.registry.content(&content) {
                Some(record) => {
                    let publication = Publication {
                        content,
                        confidential: self.registry.is_confidential(&content),
                    };
                    let signature = (self.signer)(&publication);
                    ServerReply::Content(
                        record.clone(),
                        SignedPublication {
                            publication,
                            signature,
                        },
                    )
                }
                None => ServerReply::NotFound,
            },
            ServerRequest::Have { id, content, have } => {
                match self.registry.report_have(id, content, have, now) {
                    Ok(()) => ServerReply::Ok,
                    Err(e) => error_reply(e),
                }
            }
            ServerRequest::Sources(query) => return self.sources_reply(&query),
            ServerRequest::Banned { id, peer, evidence } => {
                if self.registry.report_ban(id, peer, evidence, now) {
                    ServerReply::Ok
                } else {
                    ServerReply::UnknownClient
                }
            }
            ServerRequest::Unresponsive { id, peer } => {
                if self.registry.report_unresponsive(id, peer, now) {
                    ServerReply::Ok
                } else {
                    ServerReply::UnknownClient
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
        };
        self.wake_watchers();
        reply
    }
}

fn error_reply(e: RegistryError) -> ServerReply {
    match e {
        RegistryError::UnknownClient(_) => ServerReply::UnknownClient,
        other => ServerReply::Error(other.to_string()),
    }
}

impl Actor for RegistryActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(REGISTRY_MAILBOX);
        ctx.run_interval(Duration::from_secs(1), |act, ctx| {
            for id in act.registry.expire(Instant::now()) {
                tracing::info!(client = %id, "client expired: no heartbeat");
            }
            act.wake_watchers();
            act.persist(ctx);
        });
    }
}

crate::supervised_controls!(RegistryActor);

impl Supervised for RegistryActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!("registry actor restarting");
        self.persisting = false;
        self.importing = false;
    }
}

/// A request from a client, with the address it came from.
#[derive(Debug, Message)]
#[rtype(result = "ServerReply")]
pub struct Serve {
    /// The request.
    pub request: ServerRequest,
    /// The client's address as the transport saw it.
    pub from: SocketAddr,
}

impl Handler<Serve> for RegistryActor {
    type Result = ResponseActFuture<Self, ServerReply>;
    fn handle(&mut self, msg: Serve, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        if let ServerRequest::GetPurges { since } = msg.request {
            return self.purges_since(since);
        }
        let ServerRequest::Sources(query) = msg.request else {
            let reply = self.serve(msg.request, msg.from);
            return Box::pin(actix::fut::ready(reply));
        };
        let wait = Duration::from_millis(u64::from(query.wait_ms)).min(MAX_WAIT);
        let asked = query.since;
        self.answer_or_wait(query, asked, Instant::now() + wait)
    }
}

/// Purges told in one answer at most; a client that missed more asks again.
const PURGES_PER_ANSWER: usize = 1024;

impl RegistryActor {
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
                        .filter(|id| act.registry.content(id).is_none())
                        .collect(),
                },
                Ok(Err(e)) => ServerReply::Error(format!("reading the purges failed: {e}")),
                Err(e) => ServerReply::Error(format!("reading the purges failed: {e}")),
            }
        }))
    }

    /// Answers a sources query at once if the answer changes anything for
    /// the asker, and otherwise waits for the content's version to move
    /// (and asks again) until `deadline`. `asked` is the version the asker
    /// last saw, which the answer it gets is a delta against.
    fn answer_or_wait(
        &mut self,
        mut query: SourcesQuery,
        asked: u64,
        deadline: Instant,
    ) -> ResponseActFuture<Self, ServerReply> {
        let reply = match self.sources_reply(&query) {
            ServerReply::Sources(a) => ServerReply::Sources(a.rebased(query.since, asked)),
            other => other,
        };
        let now = Instant::now();
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
                .then(move |(), act, _| act.answer_or_wait(query, asked, deadline)),
        )
    }
}

/// Why the registry refused a publish or a purge.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The manifest is not one the registry accepts.
    #[error("{0}")]
    Manifest(#[from] branchline_storage::content::ContentError),
    /// A content published shareable cannot be made confidential.
    #[error(
        "content {0} was published shareable before, and peers may still hold the server's signed word for that; publish a new build to make it confidential"
    )]
    WasShared(ContentId),
    /// The registry refused it.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Purging a content that is not published.
    #[error("content {0} is not published")]
    NotPublished(ContentId),
    /// The metadata store failed.
    #[error("{what} failed: {source}")]
    Store {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        source: MetaError,
    },
    /// The blocking job that wrote it panicked or was cancelled.
    #[error("{what} failed: {reason}")]
    Job {
        /// What was being done.
        what: &'static str,
        /// Why it stopped.
        reason: String,
    },
}

impl ChangeError {
    /// The error of a store write run with [`crate::panics::run_blocking`].
    fn of_write(what: &'static str, result: Result<Result<(), MetaError>, String>) -> Self {
        match result {
            Ok(Err(source)) => ChangeError::Store { what, source },
            Ok(Ok(())) => unreachable!("only errors are converted"),
            Err(reason) => ChangeError::Job { what, reason },
        }
    }
}

/// Publishes a content; durable when answered.
#[derive(Debug, Message)]
#[rtype(result = "Result<ContentId, ChangeError>")]
pub struct Publish {
    /// The manifest.
    pub manifest: Manifest,
    /// Its origins.
    pub origins: Vec<String>,
    /// Never shared by peers.
    pub confidential: bool,
}

impl Handler<Publish> for RegistryActor {
    type Result = ResponseActFuture<Self, Result<ContentId, ChangeError>>;
    fn handle(&mut self, msg: Publish, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        let record = ContentRecord {
            manifest: msg.manifest,
            origins: msg.origins,
            published_ms: unix_ms(),
        };
        if let Err(e) = record.manifest.validate() {
            return Box::pin(actix::fut::ready(Err(e.into())));
        }
        let store = self.store.clone();
        let confidential = msg.confidential;
        let id = record.manifest.content_id();
        if confidential {
            match store.was_shared(&id) {
                Ok(false) => {}
                Ok(true) => return Box::pin(actix::fut::ready(Err(ChangeError::WasShared(id)))),
                Err(source) => {
                    return Box::pin(actix::fut::ready(Err(ChangeError::Store {
                        what: "reading what was published",
                        source,
                    })));
                }
            }
        }
        let id = match self.registry.publish(record, confidential) {
            Ok(id) => id,
            Err(e) => return Box::pin(actix::fut::ready(Err(e.into()))),
        };
        let merged = self.registry.content(&id).expect("just published").clone();
        let write =
            crate::panics::run_blocking(|| {}, move || store.put_content(&merged, confidential));
        Box::pin(
            write
                .into_actor(self)
                .map(move |result, _, _| match result {
                    Ok(Ok(())) => {
                        tracing::info!(content = %id, "content published");
                        Ok(id)
                    }
                    other => Err(ChangeError::of_write("storing the content", other)),
                }),
        )
    }
}

/// What the registry holds, for status.
#[derive(Debug, Message)]
#[rtype(result = "RegistryView")]
pub struct GetRegistryView;

impl Handler<GetRegistryView> for RegistryActor {
    type Result = MessageResult<GetRegistryView>;
    fn handle(&mut self, _: GetRegistryView, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        MessageResult(RegistryView {
            clients: self.registry.client_views(Instant::now()),
            contents: self.registry.content_views(),
            links: self.registry.link_views(),
            origin: self.registry.origin_views(),
            bans: self.registry.ban_views(),
        })
    }
}

/// Purges a content from the server and, through the clients' next
/// heartbeats, from every cache; durable when answered. The purge is one
/// transaction in the store, numbered; clients learn the number with
/// their office, and each asks for the purges it has not seen, however
/// long it was away.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), ChangeError>")]
pub struct Purge(pub ContentId);

impl Handler<Purge> for RegistryActor {
    type Result = ResponseActFuture<Self, Result<(), ChangeError>>;
    fn handle(&mut self, msg: Purge, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        let id = msg.0;
        if !self.registry.purge(&id) {
            return Box::pin(actix::fut::ready(Err(ChangeError::NotPublished(id))));
        }
        self.wake_watchers();
        let store = self.store.clone();
        let removal = crate::panics::run_blocking(|| {}, move || store.purge_content(&id));
        Box::pin(removal.into_actor(self).map(|result, act, _| match result {
            Ok(Ok(seq)) => {
                act.registry.purged_up_to(seq);
                Ok(())
            }
            other => Err(ChangeError::of_write(
                "removing the content from the store",
                other.map(|r| r.map(|_| ())),
            )),
        }))
    }
}

/// Replaces the topology with a spreadsheet, all or nothing; durable when
/// answered. The answer is the number of offices, or every problem found.
///
/// Parsing, the checks (the overlap check of every block) and the write
/// run on the blocking pool, never on the registry's thread: heartbeats
/// and sources answers go on while a large sheet is imported, and the new
/// topology is swapped in, in one step, only once it is valid and stored.
/// One import at a time: another one meanwhile is refused.
#[derive(Debug, Message)]
#[rtype(result = "Result<u32, Vec<String>>")]
pub struct ImportTopology(pub Vec<u8>);

/// Parses and checks a sheet, then stores the topology it makes: every
/// problem of the sheet, or why storing failed.
fn import_and_store(
    store: &MetaStore,
    sheet: &[u8],
    number: u64,
    written: &TopologyWrites,
) -> Result<Topology, Vec<String>> {
    let topology = spreadsheet::import(sheet)
        .map_err(|problems| problems.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    save_topology(store, &topology, number, written)
        .map_err(|e| vec![format!("storing the topology failed: {e}")])?;
    topology.prepare_lookups();
    Ok(topology)
}

impl Handler<ImportTopology> for RegistryActor {
    type Result = ResponseActFuture<Self, Result<u32, Vec<String>>>;
    fn handle(&mut self, msg: ImportTopology, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        if self.importing {
            return Box::pin(actix::fut::ready(Err(vec![
                "another topology import is in progress; try again when it is done".to_owned(),
            ])));
        }
        self.importing = true;
        let store = self.store.clone();
        let (number, writes) = (self.next_topology_number(), self.topology_writes.clone());
        // A panic in the import leaves the registry as it was: nothing to
        // restart, and the answer names it.
        let work = crate::panics::run_blocking(
            || {},
            move || import_and_store(&store, &msg.0, number, &writes),
        );
        Box::pin(work.into_actor(self).map(move |result, act, _| {
            act.importing = false;
            let topology = match result {
                Ok(imported) => imported?,
                Err(e) => return Err(vec![format!("the import stopped: {e}")]),
            };
            let offices = u32::try_from(topology.offices().len()).unwrap_or(u32::MAX);
            act.registry.set_topology(topology);
            tracing::info!(offices, "topology imported");
            Ok(offices)
        }))
    }
}

/// The topology as a spreadsheet.
#[derive(Debug, Message)]
#[rtype(result = "String")]
pub struct ExportTopology;

impl Handler<ExportTopology> for RegistryActor {
    type Result = String;
    fn handle(&mut self, _: ExportTopology, _: &mut Context<Self>) -> String {
        crate::supervision::handled();
        spreadsheet::export(self.registry.topology())
    }
}

/// The office tree with its clients and RVPs.
#[derive(Debug, Message)]
#[rtype(result = "TopologyView")]
pub struct ShowTopology;

impl Handler<ShowTopology> for RegistryActor {
    type Result = MessageResult<ShowTopology>;
    fn handle(&mut self, _: ShowTopology, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        MessageResult(self.registry.topology_view(Instant::now()))
    }
}

#[cfg(test)]
mod tests;
