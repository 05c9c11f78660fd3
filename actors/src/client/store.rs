//! The store actor: the node's piece cache behind a bounded mailbox. Every
//! cache call runs on tokio's blocking pool, so neither this actor's arbiter
//! nor the one driving QUIC ever waits on disk.
//!
//! When the mailbox is full, callers on network paths (serving a peer) use
//! `try_send` and answer `Busy`; local callers wait.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use actix::prelude::*;
use branchline_storage::piece_cache::{ContentSummary, Exported, PutOutcome, Usage};
use branchline_storage::publication::SignedPublication;
use branchline_storage::{CacheError, ContentId, Manifest, PieceCache, PieceMap};
use bytes::Bytes;

use crate::messages::ReportHave;

/// Messages the store's mailbox holds at most.
pub const STORE_MAILBOX: usize = 256;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The cache refused or failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The blocking worker died (it panicked); nothing was marked.
    #[error("store worker failed: {0}")]
    Worker(#[from] crate::panics::JobError),
    /// The store actor's mailbox is closed (it is restarting or stopped).
    #[error("the store is not running: {0}")]
    Gone(#[from] actix::MailboxError),
}

/// The store actor.
pub struct Store {
    cache: Arc<PieceCache>,
    /// Where a content's have-map goes when a rotted piece was dropped.
    drops: Option<Recipient<ReportHave>>,
    /// Itself, to restart when a blocking job panics.
    me: Option<Recipient<crate::supervision::Kill>>,
}

impl Store {
    /// A store over an open cache.
    pub fn new(cache: Arc<PieceCache>) -> Self {
        Store {
            cache,
            drops: None,
            me: None,
        }
    }

    /// Tells the server (through [`ReportDropsTo`]) what `content` holds
    /// now that pieces of it were dropped.
    fn report_drop(&self, content: ContentId) {
        let Some(drops) = self.drops.clone() else {
            return;
        };
        let cache = self.cache.clone();
        actix::spawn(async move {
            let have = tokio::task::spawn_blocking(move || cache.have(&content)).await;
            if let Ok(Ok(have)) = have {
                tracing::warn!(%content, have = have.count(), "telling the server a rotted piece was dropped");
                // Local and bounded: the server link coalesces have reports.
                let _ = drops.send(ReportHave { content, have }).await;
            }
        });
    }

    fn blocking<T: Send + 'static>(
        &self,
        job: impl FnOnce(&PieceCache) -> Result<T, CacheError> + Send + 'static,
    ) -> ResponseFuture<Result<T, StoreError>> {
        let (cache, me) = (self.cache.clone(), self.me.clone());
        Box::pin(async move {
            // A job that panics restarts the store (the cache's locks do not
            // stay poisoned: see `PieceCache`), and its caller gets an error.
            let restart = move || {
                if let Some(me) = me {
                    // Local and bounded: a stop request to the store itself.
                    let _ = me.try_send(crate::supervision::Kill::Stop);
                }
            };
            match crate::panics::run_blocking(restart, move || job(&cache)).await {
                Ok(result) => result.map_err(StoreError::from),
                Err(e) => Err(StoreError::Worker(e)),
            }
        })
    }
}

impl Actor for Store {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(STORE_MAILBOX);
        self.me = Some(ctx.address().recipient());
    }
}

crate::supervised_controls!(Store);

impl Supervised for Store {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!("store actor restarting");
    }
}

/// Adds a content to the cache (evicting if the quota needs room), with
/// the server's publication of it; answers its have-map.
#[derive(Debug, Message)]
#[rtype(result = "Result<PieceMap, StoreError>")]
pub struct AddContent {
    /// The manifest.
    pub manifest: Manifest,
    /// What the server vouched for (checked by whoever got it).
    pub publication: SignedPublication,
}

/// Verifies and stores a piece.
#[derive(Debug, Message)]
#[rtype(result = "Result<PutOutcome, StoreError>")]
pub struct PutPiece {
    /// The content.
    pub content: ContentId,
    /// The piece.
    pub index: u32,
    /// Its bytes, not yet verified.
    pub bytes: Bytes,
}

/// Reads a held piece for a peer (verified again on the way out). The
/// answer goes to `reply`, so the network path can `try_send` this and
/// answer `Busy` when the mailbox is full instead of queueing without bound.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct ServePiece {
    /// The content.
    pub content: ContentId,
    /// The piece.
    pub index: u32,
    /// Where the bytes (or the error) go.
    pub reply: tokio::sync::oneshot::Sender<Result<Vec<u8>, StoreError>>,
}

/// A content as the cache holds it.
#[derive(Clone, Debug)]
pub struct Cached {
    /// The manifest.
    pub manifest: Arc<Manifest>,
    /// The pieces held.
    pub have: PieceMap,
    /// The server's publication, if one was kept (contents cached before
    /// publications existed have none).
    pub publication: Option<SignedPublication>,
}

impl Cached {
    /// True if peers must never get it.
    pub fn confidential(&self) -> bool {
        self.publication
            .as_ref()
            .is_some_and(|p| p.publication.confidential)
    }
}

/// A content, if cached.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<Cached>, StoreError>")]
pub struct Lookup(pub ContentId);

/// Writes a complete content (or some of its pieces) into a file the
/// asker opened, verifying every piece on the way out: a piece that rotted
/// on disk is dropped from the cache, reported, not written, and listed in
/// the answer, so the asker fetches it again and writes just those.
#[derive(Debug, Message)]
#[rtype(result = "Result<Exported, StoreError>")]
pub struct ExportTo {
    /// The content.
    pub content: ContentId,
    /// The file to write into.
    pub out: Arc<File>,
    /// Its name, for errors.
    pub label: PathBuf,
    /// The pieces to write; `None`: all, after sizing the file.
    pub pieces: Option<Vec<u32>>,
}

/// From now on, every piece the store finds rotted on disk (serving it, or
/// writing it out) has its content's new have-map reported here at once,
/// so the server stops naming this node as a holder of it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReportDropsTo(pub Recipient<ReportHave>);

/// Removes a content and its bytes from the cache (purged everywhere).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct RemoveContent(pub ContentId);

/// The number of the last server purge the cache applied.
#[derive(Debug, Message)]
#[rtype(result = "Result<u64, StoreError>")]
pub struct PurgesSeen;

/// Drops purged contents from the cache, then records the number of the
/// last purge applied (durable when answered).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct ApplyPurges {
    /// The contents purged.
    pub contents: Vec<ContentId>,
    /// The number of the last purge they cover.
    pub seen: u64,
}

/// Every content with its have-map, usage included: for status and for
/// registering with the server.
#[derive(Debug, Message)]
#[rtype(result = "Result<Inventory, StoreError>")]
pub struct GetInventory;

/// What the cache holds.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// Contents, summarised.
    pub contents: Vec<ContentSummary>,
    /// Have-maps of every content.
    pub holdings: Vec<(ContentId, PieceMap)>,
    /// Quota and use.
    pub usage: Usage,
}

impl Handler<AddContent> for Store {
    type Result = ResponseFuture<Result<PieceMap, StoreError>>;
    fn handle(&mut self, msg: AddContent, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        self.blocking(move |c| {
            // The publication first: a crash between the two leaves a
            // publication without a content (harmless), never a content
            // whose confidentiality is unknown.
            c.set_publication(&msg.publication)?;
            c.add(&msg.manifest, false)
        })
    }
}

impl Handler<PutPiece> for Store {
    type Result = ResponseFuture<Result<PutOutcome, StoreError>>;
    fn handle(&mut self, msg: PutPiece, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        self.blocking(move |c| c.put_piece(&msg.content, msg.index, &msg.bytes))
    }
}

impl Handler<ServePiece> for Store {
    type Result = ();
    fn handle(&mut self, msg: ServePiece, ctx: &mut Context<Self>) {
        crate::supervision::handled();
        let content = msg.content;
        let read = self.blocking(move |c| c.read_piece_to_share(&msg.content, msg.index));
        let reply = msg.reply;
        ctx.spawn(read.into_actor(self).map(move |result, act, _| {
            if matches!(result, Err(StoreError::Cache(CacheError::Corrupt { .. }))) {
                act.report_drop(content);
            }
            // The asker may have given up; nothing to do then.
            let _ = reply.send(result);
        }));
    }
}

impl Handler<ReportDropsTo> for Store {
    type Result = ();
    fn handle(&mut self, msg: ReportDropsTo, _: &mut Context<Self>) {
        crate::supervision::handled();
        self.drops = Some(msg.0);
    }
}

impl Handler<Lookup> for Store {
    type Result = ResponseFuture<Result<Option<Cached>, StoreError>>;
    fn handle(&mut self, msg: Lookup, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        self.blocking(move |c| match c.manifest(&msg.0)? {
            Some(manifest) => Ok(Some(Cached {
                manifest,
                have: c.have(&msg.0)?,
                publication: c.publication(&msg.0)?,
            })),
            None => Ok(None),
        })
    }
}

impl Handler<ExportTo> for Store {
    type Result = ResponseActFuture<Self, Result<Exported, StoreError>>;
    fn handle(&mut self, msg: ExportTo, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        let content = msg.content;
        let export = self.blocking(move |c| {
            c.export_to(&msg.content, &msg.out, &msg.label, msg.pieces.as_deref())
        });
        Box::pin(export.into_actor(self).map(move |result, act, _| {
            if result.as_ref().is_ok_and(|e| !e.dropped.is_empty()) {
                act.report_drop(content);
            }
            result
        }))
    }
}

impl Handler<RemoveContent> for Store {
    type Result = ResponseFuture<Result<(), StoreError>>;
    fn handle(&mut self, msg: RemoveContent, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        self.blocking(move |c| c.remove(&msg.0))
    }
}

impl Handler<PurgesSeen> for Store {
    type Result = ResponseFuture<Result<u64, StoreError>>;
    fn handle(&mut self, _: PurgesSeen, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        self.blocking(|c| c.purges_seen())
    }
}

impl Handler<ApplyPurges> for Store {
    type Result = ResponseFuture<Result<(), StoreError>>;
    fn handle(&mut self, msg: ApplyPurges, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        self.blocking(move |c| c.apply_purges(&msg.contents, msg.seen))
    }
}

impl Handler<GetInventory> for Store {
    type Result = ResponseFuture<Result<Inventory, StoreError>>;
    fn handle(&mut self, _: GetInventory, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        self.blocking(|c| {
            let contents = c.contents()?;
            let holdings = contents
                .iter()
                .map(|s| Ok((s.id, c.have(&s.id)?)))
                .collect::<Result<_, CacheError>>()?;
            Ok(Inventory {
                contents,
                holdings,
                usage: c.usage()?,
            })
        })
    }
}
