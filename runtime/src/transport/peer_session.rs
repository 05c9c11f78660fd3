//! The peer session actor (the "client actor"): one per remote peer. It
//! serves the peer's piece requests on connections the peer opened, and
//! carries this node's piece requests to the peer on a connection it opens
//! itself. It counts bytes both ways.
//!
//! Serving: each request is one QUIC stream; the piece is read through the
//! store's bounded mailbox with `try_send`, and a full mailbox is answered
//! `Busy` at once. The number of streams a peer may have open is capped by
//! the endpoint (64 per connection).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::request_rate::{Admitted, RequestRate, TOO_MANY_REQUESTS};
use actix::prelude::*;
use branchline_actors::client::counters::{Counters, Rejection};
use branchline_actors::client::store::{Lookup, ServePiece, Store, StoreError};
use branchline_actors::messages::{FetchError, FetchFromPeer, FetchManifest};
use branchline_actors::wire::{
    FrameError, MAX_REPLY_FRAME, MAX_REQUEST_FRAME, PeerReply, PeerRequest, Refusal, read_frame,
    write_frame,
};
use branchline_storage::publication::SignedPublication;
use branchline_storage::{CacheError, ContentId, Manifest};
use bytes::{Bytes, BytesMut};

use super::TransportDeps;
use super::connection_slot::ConnectionSlot;
use super::exchange::{ExchangeError, exchange};
use super::session_stats::SessionStats;
use crate::link_status::LinkStatus;

/// Messages a session's mailbox holds at most.
pub const SESSION_MAILBOX: usize = 128;
/// Deadline for dialling a peer.
const DIAL_DEADLINE: Duration = Duration::from_secs(3);
/// Longest wait for the store when a peer asks for a manifest.
const MANIFEST_DEADLINE: Duration = Duration::from_secs(5);
/// Deadline for a peer to send its request once it opened a stream.
const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// How often a background session sends a probe on the connection it
/// dialled (see [`PeerSession`]'s `started`).
const PROBE_EVERY: Duration = Duration::from_millis(250);

/// The peer session actor.
pub struct PeerSession {
    addr: SocketAddr,
    serving: Serving,
    outgoing: ConnectionSlot,
    /// Probe the connection this session dials (see `started`).
    probe: bool,
}

/// What serving a stream needs.
#[derive(Clone)]
struct Serving {
    store: Addr<Store>,
    counters: Arc<Counters>,
    stats: Arc<SessionStats>,
    link: Arc<LinkStatus>,
    background: bool,
    /// Piece requests the peer may make, per second, and the refusals it
    /// may draw before it is disconnected.
    requests: Arc<Mutex<RequestRate>>,
}

impl Serving {
    /// What the peer's rate allows one more piece request.
    fn admit_request(&self) -> Admitted {
        branchline_actors::lock_unpoisoned(&self.requests).admit(Instant::now())
    }
}

impl PeerSession {
    /// A session with the peer at `addr`, counting into `stats`.
    pub fn new(addr: SocketAddr, deps: TransportDeps, stats: Arc<SessionStats>) -> Self {
        PeerSession {
            addr,
            serving: Serving {
                store: deps.store,
                counters: deps.counters,
                stats: stats.clone(),
                link: deps.link,
                background: deps.background,
                requests: Arc::new(Mutex::new(RequestRate::new(
                    u32::try_from(deps.requests_per_sec).unwrap_or(u32::MAX),
                ))),
            },
            outgoing: ConnectionSlot::new(deps.endpoint, addr)
                .counting_in(stats)
                .guarded_by(deps.trust),
            probe: deps.probe,
        }
    }
}

impl Actor for PeerSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(SESSION_MAILBOX);
        if self.probe {
            // The busy pause measures the link into the office from the RTT
            // of what this node sends up it, but while pieces trickle in it
            // sends little that the peer must acknowledge (acknowledgements
            // are not acknowledged, and QUIC's keep-alive waits for a
            // silence that incoming data never leaves). A one-byte datagram
            // every PROBE_EVERY is acknowledged within the peer's 2 ms ACK
            // delay: an RTT sample four times a second, about 2 kbit/s up.
            ctx.run_interval(PROBE_EVERY, |act, _| {
                if let Some(conn) = act.outgoing.current() {
                    let _ = conn.send_datagram(Bytes::from_static(b"p"));
                }
            });
        }
    }
}

branchline_actors::supervised_controls!(PeerSession);

impl Supervised for PeerSession {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!(peer = %self.addr, "peer session restarting");
    }
}

/// Serve a connection the peer opened.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Attach(pub quinn::Connection);

impl Handler<Attach> for PeerSession {
    type Result = ();
    fn handle(&mut self, msg: Attach, ctx: &mut Context<Self>) {
        branchline_actors::supervision::handled();
        let conn = msg.0;
        self.serving.stats.track(&conn, false);
        let (serving, peer) = (self.serving.clone(), self.addr);
        ctx.spawn(
            async move {
                loop {
                    match conn.accept_bi().await {
                        Ok((send, recv)) => {
                            let (serving, conn) = (serving.clone(), conn.clone());
                            actix_rt::spawn(async move {
                                if let Err(e) = serve_stream(send, recv, &serving, &conn).await {
                                    tracing::debug!(%peer, error = %e, "serving a stream failed");
                                }
                            });
                        }
                        Err(e) => {
                            tracing::debug!(%peer, reason = %e, "incoming connection closed");
                            break;
                        }
                    }
                }
            }
            .into_actor(self),
        );
    }
}

/// Why serving one stream ended early (logged at debug: a peer that went
/// away mid-piece is routine).
#[derive(Debug, thiserror::Error)]
enum ServeError {
    #[error("no request within the deadline")]
    NoRequest,
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("the peer kept on over its request rate; disconnected")]
    OverRate,
    #[error("the stream closed: {0}")]
    Closed(#[from] quinn::ClosedStream),
    #[error("sending the piece failed: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("the peer stopped the piece (code {0})")]
    Stopped(quinn::VarInt),
    #[error("the piece was not delivered: {0}")]
    NotDelivered(#[from] quinn::StoppedError),
}

async fn serve_stream(
    send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    serving: &Serving,
    conn: &quinn::Connection,
) -> Result<(), ServeError> {
    let request: PeerRequest = match tokio::time::timeout(
        REQUEST_DEADLINE,
        read_frame(&mut recv, MAX_REQUEST_FRAME),
    )
    .await
    {
        Err(_) => return Err(ServeError::NoRequest),
        Ok(Err(e)) => return Err(ServeError::Frame(e)),
        Ok(Ok(None)) => return Ok(()),
        Ok(Ok(Some(request))) => request,
    };
    match request {
        PeerRequest::GetPiece { content, index } => {
            serve_piece(send, serving, conn, content, index).await
        }
        PeerRequest::GetManifest { content } => serve_manifest(send, serving, content).await,
    }
}

async fn serve_manifest(
    mut send: quinn::SendStream,
    serving: &Serving,
    content: ContentId,
) -> Result<(), ServeError> {
    let manifest = if serving.link.serves() {
        manifest_for_peer(&serving.store, content).await
    } else {
        Err(Refusal::NotServing)
    };
    let reply = match manifest {
        Ok((manifest, publication)) => PeerReply::Manifest(manifest, publication),
        Err(refusal) => PeerReply::Refused(refusal),
    };
    write_frame(&mut send, &reply).await?;
    Ok(send.finish()?)
}

async fn serve_piece(
    mut send: quinn::SendStream,
    serving: &Serving,
    conn: &quinn::Connection,
    content: ContentId,
    index: u32,
) -> Result<(), ServeError> {
    let read = if !serving.link.serves() {
        Err(Refusal::NotServing)
    } else {
        match serving.admit_request() {
            Admitted::Yes => read_for_peer(&serving.store, &serving.counters, content, index).await,
            Admitted::Refused => Err(Refusal::Busy),
            Admitted::Close => {
                conn.close(TOO_MANY_REQUESTS.into(), b"too many requests");
                return Err(ServeError::OverRate);
            }
        }
    };
    #[cfg(debug_assertions)]
    let read = super::test_fault::served(read);
    match read {
        Ok(bytes) => deliver_piece(send, serving, bytes).await,
        Err(refusal) => {
            write_frame(&mut send, &PeerReply::Refused(refusal)).await?;
            Ok(send.finish()?)
        }
    }
}

/// Sends a piece and counts it as served once the peer acknowledged all
/// of it: a write only hands the bytes to QUIC, and a peer that gave up
/// on the piece (its deadline passed, the connection broke) stops the
/// stream or never acknowledges. The wait ends with the connection at the
/// latest (its idle timeout).
async fn deliver_piece(
    mut send: quinn::SendStream,
    serving: &Serving,
    bytes: Vec<u8>,
) -> Result<(), ServeError> {
    let len = u32::try_from(bytes.len()).expect("pieces are at most 16 MiB");
    write_frame(&mut send, &PeerReply::Piece { len }).await?;
    send.write_chunk(Bytes::from(bytes)).await?;
    send.finish()?;
    match send.stopped().await {
        Ok(None) => {
            serving.counters.served(u64::from(len), serving.background);
            serving.stats.add_served(u64::from(len));
            Ok(())
        }
        Ok(Some(code)) => Err(ServeError::Stopped(code)),
        Err(e) => Err(ServeError::NotDelivered(e)),
    }
}

/// The manifest of a content this node knows, with the server's
/// publication of it, for a peer that cannot ask the server; refused for a
/// confidential content. Manifest requests are rare (server out of reach),
/// so this waits for room in the store's mailbox, up to
/// [`MANIFEST_DEADLINE`].
pub(crate) async fn manifest_for_peer(
    store: &Addr<Store>,
    content: ContentId,
) -> Result<(Manifest, SignedPublication), Refusal> {
    match tokio::time::timeout(MANIFEST_DEADLINE, store.send(Lookup(content))).await {
        Err(_) => Err(Refusal::Busy),
        Ok(Ok(Ok(Some(cached)))) if cached.confidential() => Err(Refusal::Confidential),
        Ok(Ok(Ok(Some(cached)))) => match cached.publication {
            Some(publication) => Ok((Manifest::clone(&cached.manifest), publication)),
            // Cached by a version that kept no publications: nothing to
            // vouch for it with, so it is not relayed.
            None => Err(Refusal::NotHeld),
        },
        Ok(Ok(Ok(None))) => Err(Refusal::NotHeld),
        Ok(Ok(Err(_)) | Err(_)) => Err(Refusal::Internal),
    }
}

pub(crate) async fn read_for_peer(
    store: &Addr<Store>,
    counters: &Counters,
    content: branchline_storage::ContentId,
    index: u32,
) -> Result<Vec<u8>, Refusal> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    store
        .try_send(ServePiece {
            content,
            index,
            reply,
        })
        .map_err(|_| Refusal::Busy)?;
    match answer.await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(StoreError::Cache(CacheError::Corrupt { .. }))) => {
            counters.rejected(Rejection::CorruptOnDisk);
            Err(Refusal::NotHeld)
        }
        Ok(Err(StoreError::Cache(
            CacheError::NotHeld { .. } | CacheError::Unknown(_) | CacheError::Content(_),
        ))) => Err(Refusal::NotHeld),
        Ok(Err(StoreError::Cache(CacheError::Confidential(_)))) => Err(Refusal::Confidential),
        Ok(Err(e)) => {
            tracing::error!(%content, piece = index, error = %e, "reading a piece for a peer failed");
            Err(Refusal::Internal)
        }
        Err(_) => Err(Refusal::Internal),
    }
}

impl Handler<FetchManifest> for PeerSession {
    type Result = ResponseFuture<Result<(Manifest, SignedPublication), FetchError>>;
    fn handle(&mut self, msg: FetchManifest, _: &mut Context<Self>) -> Self::Result {
        branchline_actors::supervision::handled();
        let slot = self.outgoing.clone();
        Box::pin(async move { fetch_manifest(&slot, msg.content).await })
    }
}

/// Sends one request on a new stream and reads the reply frame (of at most
/// `max` bytes); the stream stays open for bytes that follow it.
async fn ask(
    slot: &ConnectionSlot,
    request: &PeerRequest,
    max: usize,
) -> Result<(PeerReply, quinn::RecvStream), FetchError> {
    let streams = slot
        .open(DIAL_DEADLINE)
        .await
        .map_err(|e| FetchError::Unreachable(e.to_string()))?;
    exchange(streams, request, max).await.map_err(|e| match e {
        ExchangeError::Send(e) => FetchError::Unreachable(e),
        ExchangeError::Reply(e) => FetchError::Protocol(e),
    })
}

/// Asks the peer for a manifest and checks it against the content id (the
/// office checks the publication).
async fn fetch_manifest(
    slot: &ConnectionSlot,
    content: ContentId,
) -> Result<(Manifest, SignedPublication), FetchError> {
    let (reply, _) = ask(slot, &PeerRequest::GetManifest { content }, MAX_REPLY_FRAME).await?;
    manifest_of(reply, content)
}

/// The manifest in a peer's reply, if it is the one of `content`.
fn manifest_of(
    reply: PeerReply,
    content: ContentId,
) -> Result<(Manifest, SignedPublication), FetchError> {
    match reply {
        PeerReply::Manifest(manifest, publication) if manifest.content_id() == content => {
            Ok((manifest, publication))
        }
        PeerReply::Manifest(manifest, _) => Err(FetchError::Protocol(format!(
            "peer sent the manifest of {} for {content}",
            manifest.content_id()
        ))),
        PeerReply::Refused(refusal) => Err(FetchError::Refused(refusal)),
        PeerReply::Piece { .. } => Err(FetchError::Protocol(
            "peer sent a piece, not a manifest".into(),
        )),
    }
}

impl Handler<FetchFromPeer> for PeerSession {
    type Result = ResponseFuture<Result<Bytes, FetchError>>;
    fn handle(&mut self, msg: FetchFromPeer, _: &mut Context<Self>) -> Self::Result {
        branchline_actors::supervision::handled();
        let (slot, stats) = (self.outgoing.clone(), self.serving.stats.clone());
        Box::pin(async move {
            // Past the deadline the read is dropped, which stops the
            // stream: the peer does not count a piece nobody took.
            let bytes = tokio::time::timeout_at(msg.deadline, fetch(&slot, &msg))
                .await
                .map_err(|_| FetchError::Timeout)??;
            stats.add_received(bytes.len() as u64);
            Ok(bytes)
        })
    }
}

/// The length of the piece body that follows a peer's `reply` to a
/// request for a piece of `expected` bytes: only exactly that many are
/// read (the buffer is sized by what this node asked, never by the peer).
pub fn piece_len(reply: &PeerReply, expected: u32) -> Result<usize, FetchError> {
    match *reply {
        PeerReply::Refused(refusal) => Err(FetchError::Refused(refusal)),
        PeerReply::Manifest(..) => Err(FetchError::Protocol(
            "peer sent a manifest, not a piece".into(),
        )),
        PeerReply::Piece { len } if len == expected => {
            Ok(usize::try_from(len).expect("u32 fits usize"))
        }
        PeerReply::Piece { len } => Err(FetchError::Protocol(format!(
            "peer offered {len} bytes for a {expected}-byte piece"
        ))),
    }
}

async fn fetch(slot: &ConnectionSlot, msg: &FetchFromPeer) -> Result<Bytes, FetchError> {
    let request = PeerRequest::GetPiece {
        content: msg.content,
        index: msg.index,
    };
    let (reply, mut recv) = ask(slot, &request, MAX_REQUEST_FRAME).await?;
    let len = piece_len(&reply, msg.len)?;
    let mut buf = BytesMut::with_capacity(len);
    while buf.len() < len {
        match recv.read_chunk(len - buf.len(), true).await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk.bytes),
            Ok(None) => {
                return Err(FetchError::Protocol(format!(
                    "stream ended after {} of {len} bytes",
                    buf.len()
                )));
            }
            Err(e) => return Err(FetchError::Unreachable(e.to_string())),
        }
    }
    // The stream's end, read too: it tells the peer (by its
    // acknowledgement) that the piece was taken whole, where dropping a
    // stream whose end was not read would stop it.
    match recv.read_chunk(1, true).await {
        Ok(None) => Ok(buf.freeze()),
        Ok(Some(_)) => Err(FetchError::Protocol(format!(
            "peer sent more than the {len} bytes of the piece"
        ))),
        Err(e) => Err(FetchError::Unreachable(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use branchline_storage::publication::Publication;

    fn manifest(name: &str) -> Manifest {
        Manifest::from_reader(name, &[7u8; 40_000][..], 16 * 1024, |_| {}).unwrap()
    }

    fn publication(content: ContentId) -> SignedPublication {
        SignedPublication {
            publication: Publication {
                content,
                confidential: false,
            },
            signature: None,
        }
    }

    #[test]
    fn a_manifest_from_a_peer_must_be_the_one_asked_for() {
        let wanted = manifest("a");
        let id = wanted.content_id();
        assert_eq!(
            manifest_of(PeerReply::Manifest(wanted.clone(), publication(id)), id),
            Ok((wanted, publication(id)))
        );
        let other = manifest("b");
        let err = manifest_of(PeerReply::Manifest(other.clone(), publication(id)), id).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "bad answer: peer sent the manifest of {} for {id}",
                other.content_id()
            )
        );
        assert_eq!(
            manifest_of(PeerReply::Refused(Refusal::NotServing), id),
            Err(FetchError::Refused(Refusal::NotServing))
        );
        assert!(manifest_of(PeerReply::Piece { len: 1 }, id).is_err());
    }
}
