//! The office actor: the node's view of its office. It starts and keeps the
//! node's transfers, answers their "where can I get pieces of X" by asking
//! the server (which applies the source order: office peers, the office up
//! the tree for the RVP, the origin at the top) and applying what the node
//! knows (peers banned for bad bytes), and hands them the content's
//! manifest and origins.
//!
//! When the server is out of reach, it asks the subnet instead: holders
//! found by broadcast become the sources, and a manifest not yet known
//! comes from one of them (checked against the content id).
//!
//! Either way a manifest is taken only with the server's signed
//! publication of it (whether peers may share it), checked by the node's
//! [`PublicationCheck`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use branchline_storage::publication::SignedPublication;
use branchline_storage::{ContentId, ContentRecord, NodeId};

use crate::client::counters::Counters;
use crate::client::office_asks::{
    ContentInfo, ContentInfoError, NotFromPeers, NotTheContents, OfficeLink, PeerUnresponsive,
    SourceStrike, SourcesRequest, TransferFinished,
};
use crate::client::store::{GetInventory, RemoveContent, Store};
use crate::client::strikes::{StrikeBook, Verdict};
use crate::client::transfer::{Recheck, Resume, Transfer, TransferDeps, TransferSettings};
use crate::messages::{
    Discover, FetchFromOrigin, FetchFromPeer, FetchManifest, LinkError, ReportHave, ServerCall,
};
use crate::pacing::busy::LinkPause;
use crate::pacing::token_bucket::LinkRate;
use crate::supervision::ActorBook;
use crate::wire::{ServerReply, ServerRequest, SourcesAnswer, SourcesQuery};

/// Messages the office's mailbox holds at most.
pub const OFFICE_MAILBOX: usize = 256;
/// How long a finished transfer stays listed.
const LINGER: Duration = Duration::from_secs(60);

/// What the office needs from the rest of the node.
#[derive(Clone)]
pub struct OfficeDeps {
    /// This node's id.
    pub node: NodeId,
    /// The store.
    pub store: Addr<Store>,
    /// The server link.
    pub server: Recipient<ServerCall>,
    /// The server link, for have reports.
    pub have_report: Recipient<ReportHave>,
    /// The foreground transport, for peers of this office.
    pub peer_fetch: Recipient<FetchFromPeer>,
    /// The background transport, for peers up the tree.
    pub wan_fetch: Recipient<FetchFromPeer>,
    /// The origin fetcher.
    pub origin_fetch: Recipient<FetchFromOrigin>,
    /// Subnet discovery, for when the server is out of reach.
    pub discover: Recipient<Discover>,
    /// The foreground transport, for manifests from peers.
    pub manifest_fetch: Recipient<FetchManifest>,
    /// The node's counters.
    pub counters: Arc<Counters>,
    /// Where the node lists its short-lived actors.
    pub book: ActorBook,
    /// The busy pause of the link into the office.
    pub link_pause: LinkPause,
    /// Strikes and bans of peers that sent bad bytes (shared with status).
    pub strikes: Arc<Mutex<StrikeBook>>,
    /// Checks the server's signature on a publication.
    pub vouch: PublicationCheck,
}

/// Checks that a publication is signed by the cluster's server (under the
/// cluster PKI; without it, every publication passes). The text says why
/// one does not.
pub type PublicationCheck = Arc<dyn Fn(&SignedPublication) -> Result<(), String> + Send + Sync>;

struct Entry {
    addr: Addr<Transfer>,
    finished: Option<(Instant, bool)>,
}

/// The office actor.
pub struct Office {
    deps: OfficeDeps,
    settings: TransferSettings,
    transfers: HashMap<ContentId, Entry>,
    link_rate: LinkRate,
}

impl Office {
    /// An office for a node.
    pub fn new(deps: OfficeDeps, settings: TransferSettings) -> Self {
        Office {
            settings,
            transfers: HashMap::new(),
            link_rate: LinkRate::new(deps.link_pause.clone()),
            deps,
        }
    }

    async fn call(
        server: Recipient<ServerCall>,
        request: ServerRequest,
    ) -> Result<ServerReply, LinkError> {
        server
            .send(ServerCall(request))
            .await
            .map_err(|e| LinkError::Refused(format!("server link unavailable: {e}")))?
    }
}

impl Office {
    /// Every content the cache holds part of is a download that did not
    /// finish (killed, rebooted, stopped): its transfer starts again, with
    /// no one asking, and goes on from the pieces stored.
    fn resume_unfinished(&mut self, ctx: &mut Context<Self>) {
        let store = self.deps.store.clone();
        let find = async move {
            match store.send(GetInventory).await {
                Ok(Ok(inventory)) => inventory
                    .contents
                    .into_iter()
                    .filter(|c| c.have < c.pieces)
                    .map(|c| c.id)
                    .collect(),
                _ => Vec::new(),
            }
        };
        ctx.spawn(
            find.into_actor(self)
                .map(|unfinished: Vec<ContentId>, _, ctx| {
                    if !unfinished.is_empty() {
                        tracing::info!(
                            downloads = unfinished.len(),
                            "resuming the downloads that did not finish"
                        );
                    }
                    for content in unfinished {
                        // Local and bounded by the contents in the cache.
                        ctx.address().do_send(StartTransfer(content));
                    }
                }),
        );
    }
}

impl Actor for Office {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(OFFICE_MAILBOX);
        self.resume_unfinished(ctx);
        ctx.run_interval(Duration::from_secs(10), |act, _| {
            let now = crate::clock::now();
            act.transfers.retain(|_, e| {
                e.finished
                    .is_none_or(|(at, _)| now.duration_since(at) < LINGER)
            });
        });
    }
}

crate::supervised_controls!(Office);

impl Supervised for Office {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!("office actor restarting");
    }
}

/// A content was purged on the server: drop it from the cache, and forget
/// its finished transfer so that a new fetch asks the server again.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Purged(pub ContentId);

impl Handler<Purged> for Office {
    type Result = ();
    fn handle(&mut self, msg: Purged, ctx: &mut Context<Self>) {
        crate::supervision::handled();
        let id = msg.0;
        self.transfers
            .retain(|content, e| *content != id || e.finished.is_none());
        let store = self.deps.store.clone();
        ctx.spawn(
            async move {
                match store.send(RemoveContent(id)).await {
                    Ok(Ok(())) => tracing::warn!(content = %id, "content purged on the server; dropped from the cache"),
                    Ok(Err(e)) => tracing::error!(content = %id, error = %e, "dropping a purged content failed"),
                    Err(e) => tracing::error!(content = %id, error = %e, "store unavailable to drop a purged content"),
                }
            }
            .into_actor(self),
        );
    }
}

/// Starts (or finds) the transfer of a content. A transfer that finished
/// is asked to [`Resume`]: it runs again if the cache lost pieces since.
#[derive(Debug, Message)]
#[rtype(result = "Addr<Transfer>")]
pub struct StartTransfer(pub ContentId);

impl Handler<StartTransfer> for Office {
    type Result = MessageResult<StartTransfer>;
    fn handle(&mut self, msg: StartTransfer, ctx: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        let reusable = self
            .transfers
            .get_mut(&msg.0)
            .filter(|e| e.addr.connected() && e.finished.is_none_or(|(_, ok)| ok));
        if let Some(entry) = reusable {
            // A finished transfer looks at the cache again: pieces may have
            // been dropped since (rotted on disk), and then it runs for them.
            if entry.finished.take().is_some() {
                entry.addr.do_send(Resume);
            }
            return MessageResult(entry.addr.clone());
        }
        let deps = TransferDeps {
            store: self.deps.store.clone(),
            office: OfficeLink {
                sources: ctx.address().recipient(),
                content_info: ctx.address().recipient(),
                finished: ctx.address().recipient(),
                strike: ctx.address().recipient(),
                unresponsive: ctx.address().recipient(),
            },
            peer_fetch: self.deps.peer_fetch.clone(),
            wan_fetch: self.deps.wan_fetch.clone(),
            origin_fetch: self.deps.origin_fetch.clone(),
            have_report: self.deps.have_report.clone(),
            counters: self.deps.counters.clone(),
            link_rate: self.link_rate.clone(),
        };
        let (content, settings) = (msg.0, self.settings);
        let name = format!("transfer-{}", &msg.0.to_hex()[..12]);
        let addr = self.deps.book.start("transfer", name, "office", move |_| {
            Transfer::new(content, settings, deps)
        });
        self.transfers.insert(
            msg.0,
            Entry {
                addr: addr.clone(),
                finished: None,
            },
        );
        MessageResult(addr)
    }
}

/// The cache lost pieces of a content (dropped as rotted outside any
/// transfer): its transfer, if there is one, starts again from what the
/// cache holds.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct CacheChanged(pub ContentId);

impl Handler<CacheChanged> for Office {
    type Result = ();
    fn handle(&mut self, msg: CacheChanged, _: &mut Context<Self>) {
        crate::supervision::handled();
        if let Some(entry) = self.transfers.get_mut(&msg.0) {
            entry.finished = None;
            entry.addr.do_send(Recheck);
        }
    }
}

/// Every transfer the office keeps (running or recently finished).
#[derive(Debug, Message)]
#[rtype(result = "Vec<Addr<Transfer>>")]
pub struct ListTransfers;

impl Handler<ListTransfers> for Office {
    type Result = MessageResult<ListTransfers>;
    fn handle(&mut self, _: ListTransfers, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        MessageResult(self.transfers.values().map(|e| e.addr.clone()).collect())
    }
}

impl Handler<TransferFinished> for Office {
    type Result = ();
    fn handle(&mut self, msg: TransferFinished, _: &mut Context<Self>) {
        crate::supervision::handled();
        if let Some(entry) = self.transfers.get_mut(&msg.content) {
            entry.finished = Some((crate::clock::now(), msg.outcome.is_ok()));
        }
    }
}

impl Handler<SourceStrike> for Office {
    type Result = bool;
    fn handle(&mut self, msg: SourceStrike, ctx: &mut Context<Self>) -> bool {
        crate::supervision::handled();
        let peer = msg.peer;
        let mut book = crate::lock_unpoisoned(&self.deps.strikes);
        match book.strike(peer, msg.evidence) {
            Verdict::Struck(strikes) => {
                tracing::warn!(%peer, strikes, "strike: the peer sent a piece that failed verification");
                false
            }
            Verdict::AlreadyBanned => true,
            Verdict::Banned => {
                let evidence = book.evidence(&peer);
                drop(book);
                tracing::warn!(%peer, strikes = evidence.len(), "peer banned for sending pieces that failed verification; telling the server");
                let request = ServerRequest::Banned {
                    id: self.deps.node,
                    peer,
                    evidence,
                };
                let server = self.deps.server.clone();
                ctx.spawn(
                    async move {
                        if let Err(e) = Self::call(server, request).await {
                            tracing::warn!(%peer, error = %e, "could not report the ban to the server");
                        }
                    }
                    .into_actor(self),
                );
                true
            }
        }
    }
}

impl Handler<PeerUnresponsive> for Office {
    type Result = ();
    fn handle(&mut self, msg: PeerUnresponsive, ctx: &mut Context<Self>) {
        crate::supervision::handled();
        let request = ServerRequest::Unresponsive {
            id: self.deps.node,
            peer: msg.0,
        };
        let server = self.deps.server.clone();
        ctx.spawn(
            async move {
                if let Err(e) = Self::call(server, request).await {
                    tracing::debug!(error = %e, "could not report an unresponsive peer");
                }
            }
            .into_actor(self),
        );
    }
}

impl Handler<ContentInfo> for Office {
    type Result = ResponseFuture<Result<(ContentRecord, SignedPublication), ContentInfoError>>;
    fn handle(&mut self, msg: ContentInfo, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        let (server, discover, fetch, vouch) = (
            self.deps.server.clone(),
            self.deps.discover.clone(),
            self.deps.manifest_fetch.clone(),
            self.deps.vouch.clone(),
        );
        Box::pin(async move { content_info(msg.0, server, &discover, &fetch, &vouch).await })
    }
}

/// Accepts a record and publication only if both are about `content` and
/// the publication carries the server's signature.
fn accept(
    content: ContentId,
    record: &ContentRecord,
    publication: &SignedPublication,
    vouch: &PublicationCheck,
) -> Result<(), NotTheContents> {
    if record.manifest.content_id() != content {
        return Err(NotTheContents::Manifest(content));
    }
    if publication.publication.content != content {
        return Err(NotTheContents::Publication {
            content,
            about: publication.publication.content,
        });
    }
    vouch(publication).map_err(|why| NotTheContents::Signature { content, why })
}

/// The record and publication of a content from the server, or from peers
/// found by broadcast when the server is out of reach.
async fn content_info(
    content: ContentId,
    server: Recipient<ServerCall>,
    discover: &Recipient<Discover>,
    fetch: &Recipient<FetchManifest>,
    vouch: &PublicationCheck,
) -> Result<(ContentRecord, SignedPublication), ContentInfoError> {
    match Office::call(server, ServerRequest::GetContent { content }).await {
        Ok(ServerReply::Content(record, publication)) => {
            accept(content, &record, &publication, vouch)?;
            Ok((record, publication))
        }
        Ok(ServerReply::NotFound) => Err(ContentInfoError::NotPublished(content)),
        Ok(other) => Err(ContentInfoError::Unexpected(format!("{other:?}"))),
        Err(link @ LinkError::Unreachable { .. }) => {
            tracing::warn!(%content, error = %link, "server out of reach; asking the subnet for the manifest");
            manifest_from_peers(content, discover, fetch, vouch)
                .await
                .map_err(|peers| ContentInfoError::NotFromPeers { link, peers })
        }
        Err(e) => Err(e.into()),
    }
}

/// Most discovered peers asked for a manifest before giving up.
const MANIFEST_TRIES: usize = 3;

/// A content's manifest from peers found by broadcast, with no origins
/// (only the server knows them).
async fn manifest_from_peers(
    content: ContentId,
    discover: &Recipient<Discover>,
    fetch: &Recipient<FetchManifest>,
    vouch: &PublicationCheck,
) -> Result<(ContentRecord, SignedPublication), NotFromPeers> {
    let peers = discover
        .send(Discover(content))
        .await
        .map_err(|e| NotFromPeers::Discovery(e.to_string()))?;
    for peer in peers.iter().take(MANIFEST_TRIES) {
        match fetch
            .send(FetchManifest {
                addr: peer.addr,
                content,
            })
            .await
        {
            Ok(Ok((manifest, publication))) => {
                let record = ContentRecord {
                    manifest,
                    origins: Vec::new(),
                    published_ms: 0,
                };
                // One peer's bad answer does not end the search.
                match accept(content, &record, &publication, vouch) {
                    Ok(()) => return Ok((record, publication)),
                    Err(why) => {
                        tracing::warn!(peer = %peer.addr, %why, "manifest from peer refused")
                    }
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(peer = %peer.addr, error = %e, "manifest from peer failed")
            }
            Err(e) => tracing::warn!(peer = %peer.addr, error = %e, "transport unavailable"),
        }
    }
    Err(NotFromPeers::NoneGave(peers.len()))
}

impl Handler<SourcesRequest> for Office {
    type Result = ResponseActFuture<Self, Result<SourcesAnswer, LinkError>>;
    fn handle(&mut self, msg: SourcesRequest, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        let query = SourcesQuery {
            id: self.deps.node,
            content: msg.content,
            since: msg.since,
            want_leases: msg.want_leases,
            release: msg.release,
            stuck: msg.stuck,
            wait_ms: u32::try_from(msg.wait.as_millis()).unwrap_or(u32::MAX),
        };
        let (server, discover, content) = (
            self.deps.server.clone(),
            self.deps.discover.clone(),
            msg.content,
        );
        let giving_back = query.only_gives_back();
        let call = async move {
            match Self::call(server, ServerRequest::Sources(query)).await {
                // Leases given back need no peers: the subnet is not asked.
                Err(e @ LinkError::Unreachable { .. }) if !giving_back => {
                    tracing::debug!(%content, error = %e, "server out of reach; asking the subnet");
                    let peers = discover.send(Discover(content)).await.unwrap_or_default();
                    Ok(ServerReply::Sources(SourcesAnswer::discovered(peers)))
                }
                other => other,
            }
        };
        Box::pin(call.into_actor(self).map(|reply, act, _| match reply? {
            ServerReply::Sources(mut answer) => {
                let book = crate::lock_unpoisoned(&act.deps.strikes);
                answer
                    .peers
                    .retain(|p| !book.is_banned(&p.id) && p.id != act.deps.node);
                // Known peers banned since are dropped by the download too.
                answer.gone.extend(book.banned());
                Ok(answer)
            }
            ServerReply::UnknownClient => Err(LinkError::Refused("not registered yet".into())),
            ServerReply::Error(e) => Err(LinkError::Refused(e)),
            other => Err(LinkError::Refused(format!("unexpected answer {other:?}"))),
        }))
    }
}
