//! The transfer actor: one per content being downloaded.
//!
//! It drives a [`Picker`]: it long-polls the office for sources, sends the
//! picker's requests to peers and origins with several in flight, has every
//! piece verified and stored by the store actor, tells the server at once,
//! and reports progress. A restarted transfer starts again from the pieces
//! already in the cache.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use branchline_storage::content::ContentError;
use branchline_storage::{CacheError, ContentId, Manifest, PieceMap};
use bytes::Bytes;

use crate::client::counters::{Counters, Rejection, SourceClass};
use crate::client::have_reporter::HaveReporter;
use crate::client::known_sources::KnownSources;
use crate::client::office_asks::{
    ContentInfo, OfficeLink, PeerUnresponsive, SourceStrike, TransferError, TransferFinished,
};
use crate::client::picker::{Failure, Limits, Picker, Request, Source};
use crate::client::store::{AddContent, Lookup, PutPiece, Store, StoreError};
use crate::messages::{FetchError, FetchFromOrigin, FetchFromPeer, ReportHave};
use crate::pacing::token_bucket::LinkRate;
use crate::wire::{BadPiece, TransferProgress};

/// Messages a transfer's mailbox holds at most.
pub const TRANSFER_MAILBOX: usize = 64;

/// How often a transfer that knows no origin asks the server for them.
const ASK_ORIGINS_EVERY: Duration = Duration::from_secs(10);

/// How a transfer behaves.
#[derive(Clone, Copy, Debug)]
pub struct TransferSettings {
    /// Requests in flight.
    pub limits: Limits,
    /// Longest wait for one piece.
    pub request_timeout: Duration,
    /// Longest long-poll wait for a change of sources.
    pub poll_wait: Duration,
}

/// The actors and counters a transfer works with.
#[derive(Clone)]
pub struct TransferDeps {
    /// The node's store.
    pub store: Addr<Store>,
    /// What it asks of the node's office actor.
    pub office: OfficeLink,
    /// The foreground transport, for peers of this office.
    pub peer_fetch: Recipient<FetchFromPeer>,
    /// The background transport, for upstream peers (across the WAN).
    pub wan_fetch: Recipient<FetchFromPeer>,
    /// The origin fetcher.
    pub origin_fetch: Recipient<FetchFromOrigin>,
    /// The server link, for have reports.
    pub have_report: Recipient<ReportHave>,
    /// The node's counters.
    pub counters: Arc<Counters>,
    /// The cap on the link into the office, shared by the node's downloads.
    pub link_rate: LinkRate,
}

/// Where a transfer is.
#[derive(Clone, Debug, PartialEq)]
pub enum Phase {
    /// Looking up the manifest and the cache.
    Starting,
    /// Downloading.
    Running,
    /// Every piece is held.
    Complete,
    /// It cannot finish; the text says why.
    Failed(String),
}

/// Progress and phase, for whoever waits on the transfer.
#[derive(Clone, Debug, PartialEq, Message)]
#[rtype(result = "()")]
pub struct TransferState {
    /// The phase.
    pub phase: Phase,
    /// Progress (zeroes while starting).
    pub progress: TransferProgress,
}

/// Asks a transfer for its state.
#[derive(Debug, Message)]
#[rtype(result = "TransferState")]
pub struct GetState;

struct Running {
    manifest: Arc<Manifest>,
    origins: Vec<String>,
    /// Why each origin last failed, for the error when every one has.
    origin_errors: Vec<Option<String>>,
    /// Origins only; the server is never asked for sources.
    confidential: bool,
    picker: Picker,
    known: KnownSources,
    polling: bool,
    /// When the server was last asked for the origins it knows (the
    /// transfer started without any).
    origins_asked: Option<Instant>,
    wake_armed: bool,
    from_peers: u64,
    from_parent: u64,
    from_origin: u64,
}

impl Running {
    /// Keeps why an origin failed (a peer's failure is the picker's).
    fn note_origin_error(&mut self, source: Source, error: String) {
        if let Source::Origin(i) = source {
            self.origin_errors[i] = Some(error);
        }
    }
}

/// "url (last error), url (last error)": what the error of a transfer that
/// ran out of origins says about each.
fn origin_failures(origins: &[String], errors: &[Option<String>]) -> String {
    let each = origins.iter().zip(errors).map(|(url, error)| match error {
        Some(error) => format!("{url} ({error})"),
        None => url.clone(),
    });
    each.collect::<Vec<_>>().join(", ")
}

/// The transfer actor.
pub struct Transfer {
    content: ContentId,
    settings: TransferSettings,
    deps: TransferDeps,
    phase: Phase,
    run: Option<Running>,
    have_reporter: HaveReporter,
}

/// What a transfer starts from.
struct Start {
    manifest: Arc<Manifest>,
    origins: Vec<String>,
    have: PieceMap,
    /// Origins only: no peer is asked, nor the server for sources.
    confidential: bool,
}

type Started = Result<Start, TransferError>;

/// A reply from another actor, still on its way.
type Pending<T> = std::pin::Pin<Box<dyn Future<Output = Result<T, MailboxError>>>>;

impl Transfer {
    /// A transfer of `content`; it starts when the actor starts.
    pub fn new(content: ContentId, settings: TransferSettings, deps: TransferDeps) -> Self {
        Transfer {
            content,
            settings,
            have_reporter: HaveReporter::new(deps.have_report.clone()),
            deps,
            phase: Phase::Starting,
            run: None,
        }
    }

    fn begin(&mut self, ctx: &mut Context<Self>) {
        // A run started again (a recheck) gives its leases back first.
        self.give_back_leases();
        self.phase = Phase::Starting;
        self.run = None;
        let content = self.content;
        let store = self.deps.store.clone();
        let office = self.deps.office.content_info.clone();
        let start = async move {
            let cached = store.send(Lookup(content)).await??;
            if let Some(cached) = cached
                && cached.have.is_complete()
            {
                let confidential = cached.confidential();
                return Ok(Start {
                    manifest: cached.manifest,
                    origins: Vec::new(),
                    have: cached.have,
                    confidential,
                });
            }
            // Checked by the office: the content's manifest, and a
            // publication about it that the server signed.
            let (record, publication) = office.send(ContentInfo(content)).await??;
            let confidential = publication.publication.confidential;
            let have = store
                .send(AddContent {
                    manifest: record.manifest.clone(),
                    publication,
                })
                .await??;
            Ok(Start {
                manifest: Arc::new(record.manifest),
                origins: record.origins,
                have,
                confidential,
            })
        };
        ctx.spawn(
            start
                .into_actor(self)
                .map(|started: Started, act, ctx| act.on_started(started, ctx)),
        );
    }

    fn on_started(&mut self, started: Started, ctx: &mut Context<Self>) {
        match started {
            Err(reason) => self.fail(reason),
            Ok(Start {
                origins,
                have,
                confidential: true,
                ..
            }) if origins.is_empty() && !have.is_complete() => {
                self.fail(TransferError::ConfidentialWithoutOrigin(self.content))
            }
            Ok(Start {
                manifest,
                origins,
                have,
                confidential,
            }) => {
                let mut picker = Picker::new(have, origins.len(), self.settings.limits);
                picker.share_link_rate(self.deps.link_rate.clone());
                if confidential {
                    // Nobody shares it: every missing piece is this node's
                    // to take from the origins.
                    picker.grant_unheld();
                }
                tracing::info!(content = %self.content, name = %manifest.name, have = picker.have().count(), pieces = manifest.piece_count(), confidential, "transfer started");
                self.run = Some(Running {
                    known: KnownSources::new(manifest.piece_count()),
                    manifest,
                    origin_errors: vec![None; origins.len()],
                    confidential,
                    origins,
                    picker,
                    polling: false,
                    origins_asked: None,
                    wake_armed: false,
                    from_peers: 0,
                    from_parent: 0,
                    from_origin: 0,
                });
                self.phase = Phase::Running;
                self.check_complete();
                self.poll(ctx);
                self.pump(ctx);
            }
        }
    }

    fn fail(&mut self, error: TransferError) {
        let reason = error.to_string();
        tracing::error!(content = %self.content, %reason, "transfer failed");
        self.phase = Phase::Failed(reason);
        self.give_back_leases();
        self.deps.office.finished.do_send(TransferFinished {
            content: self.content,
            outcome: Err(error),
        });
    }

    fn check_complete(&mut self) {
        let complete = self.run.as_ref().is_some_and(|r| r.picker.is_complete());
        if complete && self.phase == Phase::Running {
            tracing::info!(content = %self.content, "transfer complete");
            self.phase = Phase::Complete;
            self.deps.office.finished.do_send(TransferFinished {
                content: self.content,
                outcome: Ok(()),
            });
        }
    }

    /// Sends every request the picker allows now.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        if self.phase != Phase::Running {
            return;
        }
        let now = crate::clock::now();
        let Some(run) = self.run.as_mut() else { return };
        let requests = run.picker.next_requests(now);
        for request in requests {
            let fetch = self.fetch(request);
            ctx.spawn(
                fetch
                    .into_actor(self)
                    .map(move |result, act, ctx| act.on_fetched(request, result, ctx)),
            );
        }
        let Some(run) = self.run.as_mut() else { return };
        let unobtainable = run.picker.unobtainable();
        if !unobtainable.is_empty() && run.picker.in_flight() == 0 {
            let error = TransferError::Unobtainable {
                piece: unobtainable[0],
                content: self.content,
                origins: origin_failures(&run.origins, &run.origin_errors),
            };
            self.fail(error);
            return;
        }
        if let Some(wake) = run.picker.next_wake(now)
            && !run.wake_armed
        {
            run.wake_armed = true;
            ctx.run_later(wake - now, |act, ctx| {
                if let Some(run) = act.run.as_mut() {
                    run.wake_armed = false;
                }
                act.pump(ctx);
                act.poll(ctx);
            });
        }
    }

    fn fetch(
        &self,
        request: Request,
    ) -> impl Future<Output = Result<Bytes, FetchError>> + 'static + use<> {
        let run = self
            .run
            .as_ref()
            .expect("requests come from a running transfer");
        let len = run.manifest.piece_len(request.index);
        let deadline = tokio::time::Instant::now() + self.settings.request_timeout;
        let call: Pending<Result<Bytes, FetchError>> = match request.source {
            Source::Peer(_, addr) => {
                let transport = if request.upstream {
                    &self.deps.wan_fetch
                } else {
                    &self.deps.peer_fetch
                };
                Box::pin(transport.send(FetchFromPeer {
                    addr,
                    content: self.content,
                    index: request.index,
                    len: u32::try_from(len).expect("pieces are at most 16 MiB"),
                    deadline,
                }))
            }
            Source::Origin(i) => Box::pin(self.deps.origin_fetch.send(FetchFromOrigin {
                url: run.origins[i].clone(),
                offset: run.manifest.piece_offset(request.index),
                len,
            })),
        };
        async move {
            match tokio::time::timeout_at(deadline, call).await {
                Err(_) => Err(FetchError::Timeout),
                Ok(Err(mailbox)) => Err(FetchError::Unreachable(mailbox.to_string())),
                Ok(Ok(result)) => result,
            }
        }
    }

    fn source_name(&self, source: Source) -> String {
        match source {
            Source::Peer(id, addr) => format!("peer {id} at {addr}"),
            Source::Origin(i) => {
                let url = self.run.as_ref().map_or("?", |r| r.origins[i].as_str());
                format!("origin {url}")
            }
        }
    }

    fn on_fetched(
        &mut self,
        request: Request,
        result: Result<Bytes, FetchError>,
        ctx: &mut Context<Self>,
    ) {
        match result {
            Ok(bytes) => {
                if let Some(run) = self.run.as_mut() {
                    run.picker.on_received(request.id);
                }
                let store = self.deps.store.clone();
                let put = PutPiece {
                    content: self.content,
                    index: request.index,
                    bytes,
                };
                let len = put.bytes.len() as u64;
                let stored = async move { store.send(put).await? };
                ctx.spawn(
                    stored
                        .into_actor(self)
                        .map(move |result, act, ctx| act.on_stored(request, len, result, ctx)),
                );
                self.pump(ctx);
            }
            Err(error) => {
                tracing::debug!(content = %self.content, piece = request.index, source = %self.source_name(request.source), %error, "piece request failed");
                let failure = match error {
                    FetchError::Timeout | FetchError::Unreachable(_) => Failure::NoAnswer,
                    FetchError::Refused(_) | FetchError::Protocol(_) => Failure::Unavailable,
                };
                if let Some(run) = self.run.as_mut() {
                    run.note_origin_error(request.source, error.to_string());
                    run.picker
                        .on_failed(request.id, failure, crate::clock::now());
                    for peer in run.picker.take_unresponsive() {
                        tracing::warn!(content = %self.content, %peer, "peer stopped answering; telling the server");
                        let _ = self
                            .deps
                            .office
                            .unresponsive
                            .try_send(PeerUnresponsive(peer));
                    }
                }
                self.pump(ctx);
                self.poll(ctx);
            }
        }
    }

    fn on_stored(
        &mut self,
        request: Request,
        len: u64,
        result: Result<branchline_storage::piece_cache::PutOutcome, StoreError>,
        ctx: &mut Context<Self>,
    ) {
        let source_name = self.source_name(request.source);
        let Some(run) = self.run.as_mut() else { return };
        match result {
            Ok(outcome) => {
                run.picker.on_stored(&request);
                if outcome.newly_stored {
                    let class = match request.source {
                        Source::Peer(..) if request.upstream => {
                            run.from_parent += len;
                            SourceClass::Parent
                        }
                        Source::Peer(..) => {
                            run.from_peers += len;
                            SourceClass::Peer
                        }
                        Source::Origin(_) => {
                            run.from_origin += len;
                            SourceClass::Origin
                        }
                    };
                    self.deps.counters.stored(class, len);
                } else {
                    self.deps.counters.stored_again();
                }
                self.have_reporter.report(ReportHave {
                    content: self.content,
                    have: run.picker.have().clone(),
                });
                self.check_complete();
            }
            Err(StoreError::Cache(CacheError::Content(
                e @ (ContentError::PieceHashMismatch { .. } | ContentError::PieceLength { .. }),
            ))) => {
                tracing::warn!(content = %self.content, piece = request.index, source = %source_name, error = %e, "rejected a corrupt piece; striking the source");
                run.note_origin_error(request.source, e.to_string());
                self.deps.counters.rejected(match e {
                    ContentError::PieceLength { .. } => Rejection::WrongLength,
                    _ => Rejection::HashMismatch,
                });
                run.picker
                    .on_failed(request.id, Failure::BadData, crate::clock::now());
                if let Source::Peer(peer, _) = request.source {
                    let strike = SourceStrike {
                        peer,
                        evidence: BadPiece {
                            content: self.content,
                            piece: request.index,
                            error: e.to_string(),
                        },
                    };
                    ctx.spawn(self.deps.office.strike.send(strike).into_actor(self).map(
                        move |banned, act, ctx| {
                            if banned.unwrap_or(false)
                                && let Some(run) = act.run.as_mut()
                            {
                                run.picker.set_aside(peer);
                                act.pump(ctx);
                            }
                        },
                    ));
                }
            }
            Err(e) => {
                self.fail(TransferError::Storing {
                    piece: request.index,
                    source: e,
                });
                return;
            }
        }
        self.pump(ctx);
        self.poll(ctx);
    }
}

mod asks;
mod report;

impl Actor for Transfer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(TRANSFER_MAILBOX);
        self.begin(ctx);
    }
}

crate::supervised_controls!(Transfer);

impl Supervised for Transfer {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!(content = %self.content, "transfer restarting; resuming from the cache");
    }
}

/// Looks at the cache again: a finished transfer of a content that lost
/// pieces since (dropped as rotted, when served or written out) runs
/// again for them; a running one goes on. Sent by the office when a
/// finished transfer is asked for again.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Resume;

impl Handler<Resume> for Transfer {
    type Result = ();
    fn handle(&mut self, _: Resume, ctx: &mut Context<Self>) {
        crate::supervision::handled();
        if matches!(self.phase, Phase::Complete | Phase::Failed(_)) {
            tracing::info!(content = %self.content, "transfer resumes: pieces are missing again");
            self.begin(ctx);
        }
    }
}

/// The cache lost pieces of this content under the transfer (the start-up
/// check dropped rotted ones): it starts again from what the cache holds
/// now, whatever its phase.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Recheck;

impl Handler<Recheck> for Transfer {
    type Result = ();
    fn handle(&mut self, _: Recheck, ctx: &mut Context<Self>) {
        crate::supervision::handled();
        tracing::info!(content = %self.content, "the cache lost pieces under the transfer; it starts again from what it holds");
        self.begin(ctx);
    }
}
