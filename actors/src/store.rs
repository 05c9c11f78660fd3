//! The store actor: the node's piece cache behind a bounded mailbox. Every
//! cache call runs on tokio's blocking pool, so neither this actor's arbiter
//! nor the one driving QUIC ever waits on disk.
//!
//! When the mailbox is full, callers on network paths (serving a peer) use
//! `try_send` and answer `Busy`; local callers wait.

use std::path::PathBuf;
use std::sync::Arc;

use actix::prelude::*;
use branchline_storage::piece_cache::{ContentSummary, PutOutcome, Usage};
use branchline_storage::publication::SignedPublication;
use branchline_storage::{CacheError, ContentId, Manifest, PieceCache, PieceMap};
use bytes::Bytes;

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
    Worker(String),
}

/// The store actor.
pub struct Store {
    cache: Arc<PieceCache>,
}

impl Store {
    /// A store over an open cache.
    pub fn new(cache: Arc<PieceCache>) -> Self {
        Store { cache }
    }

    fn blocking<T: Send + 'static>(
        &self,
        job: impl FnOnce(&PieceCache) -> Result<T, CacheError> + Send + 'static,
    ) -> ResponseFuture<Result<T, StoreError>> {
        let cache = self.cache.clone();
        Box::pin(async move {
            match tokio::task::spawn_blocking(move || job(&cache)).await {
                Ok(result) => result.map_err(StoreError::from),
                Err(e) => Err(StoreError::Worker(e.to_string())),
            }
        })
    }
}

impl Actor for Store {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(STORE_MAILBOX);
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

/// Writes a complete content to a file.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct Export {
    /// The content.
    pub content: ContentId,
    /// The output path.
    pub out: PathBuf,
}

/// Removes a content and its bytes from the cache (purged everywhere).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct RemoveContent(pub ContentId);

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
        let read = self.blocking(move |c| c.read_piece_to_share(&msg.content, msg.index));
        let reply = msg.reply;
        ctx.spawn(read.into_actor(self).map(move |result, _, _| {
            // The asker may have given up; nothing to do then.
            let _ = reply.send(result);
        }));
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

impl Handler<Export> for Store {
    type Result = ResponseFuture<Result<(), StoreError>>;
    fn handle(&mut self, msg: Export, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        self.blocking(move |c| c.export(&msg.content, &msg.out))
    }
}

impl Handler<RemoveContent> for Store {
    type Result = ResponseFuture<Result<(), StoreError>>;
    fn handle(&mut self, msg: RemoveContent, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        self.blocking(move |c| c.remove(&msg.0))
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
