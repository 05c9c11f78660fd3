//! The embedded file storage: serves a directory over HTTP/1.1 with `Range`,
//! as the origin of last resort for one-machine and small setups. Off unless
//! configured. It counts the body bytes it sends, which is how the demo and
//! the tests measure origin traffic from outside the clients.
//!
//! **Who gets a byte.** On a secure server (the default) it speaks HTTPS
//! with the server's certificate and serves only cluster members (a client
//! certificate the cluster CA signed, not revoked; checked again at every
//! request) or the holder of a signed URL ([`signed_url`]) until it
//! expires. Anyone else gets `403` and no byte. Only with `insecure = true`
//! is it plain HTTP for anyone.
//!
//! **What is served.** Only files under the directory that a published
//! content names as an origin: anything else, paths with `..`, hidden
//! segments or anything that resolves outside the directory get 404. The
//! file is opened beneath the directory (`openat2` with `RESOLVE_BENEATH`)
//! and what was opened is checked, so no symlink swapped in between a check
//! and the open can lead elsewhere. The published set follows publishes and
//! purges at once ([`FileStorage::allow`], [`FileStorage::publish_only`]).
//!
//! **Caps.** Connections in total and per address, a deadline on the TLS
//! handshake and on reading the request head; over a cap a connection is
//! closed at once.

pub mod request;
pub mod shedding;
pub mod signed_url;

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, RANGE};
use hyper::{Method, Request, Response, StatusCode};
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWrite};

pub use request::{RangeError, parse_range, resolve};

use crate::revocation::Trust;
use crate::transport::admission::Admission;
use shedding::Shedder;

/// The longest a signed URL may live.
pub const MAX_SIGNED_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long a new connection waits for the slot a shed one frees.
const SHED_WAIT: Duration = Duration::from_millis(200);

/// Bytes read from disk per body chunk.
const CHUNK: usize = 256 * 1024;

type Body = BoxBody<Bytes, std::io::Error>;

/// Connections the kernel queues before the storage accepts them: a burst
/// of connects (a flood, or a whole office starting at once) is taken in
/// and sorted by the caps instead of waiting out SYN retries.
const BACKLOG: i32 = 4096;

/// Binds the file storage's listening socket (non-blocking, for the
/// runtime), with a deep accept queue.
pub fn listen(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The caps on what one file storage holds open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once, in all.
    pub connections: usize,
    /// Connections open at once from one IP address.
    pub per_address: usize,
    /// Longest wait for a TLS handshake, and for a request's head.
    pub deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections: 1024,
            per_address: 64,
            deadline: Duration::from_secs(10),
        }
    }
}

/// Who may fetch from the file storage.
pub enum Access {
    /// Anyone, over plain HTTP (`insecure = true` only).
    Open,
    /// Cluster members over HTTPS, and holders of a signed URL.
    Members {
        /// The TLS side: the server's certificate, client certificates
        /// asked for but not required.
        tls: tokio_rustls::TlsAcceptor,
        /// The CA and the revocation list in force.
        trust: Arc<Trust>,
        /// The key signed URLs are checked with.
        key: ring::hmac::Key,
    },
}

/// Who asks, as far as the connection tells.
#[derive(Clone)]
enum Asker {
    /// Plain HTTP on an insecure server: anyone.
    Anyone,
    /// A TLS peer with this certificate chain (checked at the handshake;
    /// checked against the list in force at each request).
    Member(Arc<Vec<CertificateDer<'static>>>),
    /// A TLS peer without a certificate: only a signed URL lets it in.
    Outsider,
}

/// The file storage server.
#[derive(Clone)]
pub struct FileStorage {
    root: Arc<PathBuf>,
    /// The directory, opened once: files are opened beneath it.
    root_dir: Arc<OwnedFd>,
    served: Arc<AtomicU64>,
    /// The real paths of the files published contents name as origins.
    published: Arc<RwLock<HashSet<PathBuf>>>,
    access: Arc<Access>,
    limits: Limits,
    /// Connections closed at once because a cap was reached.
    refused: Arc<AtomicU64>,
}

impl FileStorage {
    /// Serves `root` (which must exist) to whom `access` lets in.
    pub fn new(root: &Path, access: Access, limits: Limits) -> std::io::Result<Self> {
        let root = root.canonicalize()?;
        let root_dir = rustix::fs::open(
            &root,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        Ok(FileStorage {
            root: Arc::new(root),
            root_dir: Arc::new(root_dir),
            served: Arc::new(AtomicU64::new(0)),
            published: Arc::default(),
            access: Arc::new(access),
            limits,
            refused: Arc::default(),
        })
    }

    /// The real paths under this storage of the files `origins` name under
    /// `base_url` (this storage's URL); other origins, and files that do
    /// not exist, are skipped.
    fn files_of<'o>(
        &self,
        base_url: &str,
        origins: impl IntoIterator<Item = &'o String>,
    ) -> Vec<PathBuf> {
        let base = base_url.trim_end_matches('/');
        origins
            .into_iter()
            .filter_map(|o| o.strip_prefix(base).filter(|p| p.starts_with('/')))
            .filter_map(|p| resolve(&self.root, p)?.canonicalize().ok())
            .filter(|real| real.starts_with(self.root.as_path()))
            .collect()
    }

    fn published_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashSet<PathBuf>> {
        self.published
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Allows the files that a newly published content's `origins` name.
    pub fn allow(&self, base_url: &str, origins: &[String]) {
        let files = self.files_of(base_url, origins);
        self.published_mut().extend(files);
    }

    /// Serves exactly the files the contents still published name (after
    /// a purge: what only a purged content named is withdrawn at once).
    pub fn publish_only<'o>(&self, base_url: &str, origins: impl IntoIterator<Item = &'o String>) {
        let files: HashSet<PathBuf> = self.files_of(base_url, origins).into_iter().collect();
        *self.published_mut() = files;
    }

    /// A URL of a published file of this storage (`url`: the file's full
    /// URL under `base_url`, or its path) that anyone may fetch for
    /// `lifetime_secs`.
    pub fn sign(&self, base_url: &str, url: &str, lifetime_secs: u64) -> Result<String, String> {
        let Access::Members { key, .. } = &*self.access else {
            return Err(
                "this file storage serves anyone (insecure = true); there is nothing to sign"
                    .into(),
            );
        };
        let base = base_url.trim_end_matches('/');
        let path = url.strip_prefix(base).unwrap_or(url);
        if !path.starts_with('/') {
            return Err(format!(
                "{url} is not a URL of this file storage ({base}/...)"
            ));
        }
        let published = resolve(&self.root, path)
            .and_then(|p| p.canonicalize().ok())
            .is_some_and(|real| self.is_published(&real));
        if !published {
            return Err(format!(
                "{base}{path} is not a published file of this file storage"
            ));
        }
        if lifetime_secs == 0 || lifetime_secs > MAX_SIGNED_LIFETIME.as_secs() {
            return Err("a signed URL lives between 1 second and 7 days".into());
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(format!(
            "{base}{path}?{}",
            signed_url::sign(key, path, now + lifetime_secs)
        ))
    }

    fn is_published(&self, real: &Path) -> bool {
        self.published
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(real)
    }

    /// Body bytes sent since start.
    pub fn bytes_served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Connections closed at once because a cap was reached, since start.
    pub fn connections_refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// The directory served.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Accepts connections until the listener fails; run it on an arbiter.
    pub async fn serve(self, listener: tokio::net::TcpListener) {
        let admission = Arc::new(Mutex::new(Admission::new(self.limits.per_address)));
        let open = Arc::new(tokio::sync::Semaphore::new(self.limits.connections));
        let shedder = Arc::new(Shedder::default());
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "file storage accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if !branchline_actors::lock_unpoisoned(&admission).try_admit(peer.ip()) {
                self.refused.fetch_add(1, Ordering::Relaxed);
                continue; // dropped: closed at once
            }
            let slot = match open.clone().try_acquire_owned() {
                Ok(slot) => Some(slot),
                // Full: the oldest connection still in its handshake gives
                // way, if there is one.
                Err(_) if shedder.shed_oldest() => {
                    tokio::time::timeout(SHED_WAIT, open.clone().acquire_owned())
                        .await
                        .ok()
                        .and_then(Result::ok)
                }
                Err(_) => None,
            };
            let Some(slot) = slot else {
                branchline_actors::lock_unpoisoned(&admission).release(peer.ip());
                self.refused.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let (this, admission, shedder) = (self.clone(), admission.clone(), shedder.clone());
            actix_rt::spawn(async move {
                this.connection(stream, peer, &shedder).await;
                branchline_actors::lock_unpoisoned(&admission).release(peer.ip());
                drop(slot);
            });
        }
    }

    /// Serves one connection: TLS first on a secure server, within the
    /// deadline, unless it is shed while in its handshake.
    async fn connection(&self, stream: tokio::net::TcpStream, peer: SocketAddr, shedder: &Shedder) {
        match &*self.access {
            Access::Open => self.http(stream, Asker::Anyone).await,
            Access::Members { tls, .. } => {
                let (ticket, shed) = shedder.enter();
                let accepted = tokio::select! {
                    accepted = tokio::time::timeout(self.limits.deadline, tls.accept(stream)) => accepted,
                    _ = shed => {
                        self.refused.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%peer, "file storage full: shed a connection still in its handshake");
                        return;
                    }
                };
                shedder.leave(ticket);
                let Ok(Ok(stream)) = accepted else {
                    tracing::debug!(%peer, "file storage TLS handshake failed or timed out");
                    return;
                };
                let asker = match stream.get_ref().1.peer_certificates() {
                    Some(chain) if !chain.is_empty() => Asker::Member(Arc::new(chain.to_vec())),
                    _ => Asker::Outsider,
                };
                self.http(stream, asker).await;
            }
        }
    }

    async fn http<S>(&self, stream: S, asker: Asker)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let this = self.clone();
        let service = hyper::service::service_fn(move |req| {
            let (this, asker) = (this.clone(), asker.clone());
            async move { Ok::<_, Infallible>(this.respond(req, &asker).await) }
        });
        let io = hyper_util::rt::TokioIo::new(stream);
        if let Err(e) = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(self.limits.deadline)
            .serve_connection(io, service)
            .await
        {
            tracing::debug!(error = %e, "file storage connection ended with an error");
        }
    }

    /// Whether `asker` may fetch `req`: anyone on an insecure server; a
    /// member whose certificate is not revoked; else a valid signed URL.
    fn allowed(&self, req: &Request<hyper::body::Incoming>, asker: &Asker) -> Result<(), String> {
        let Access::Members { trust, key, .. } = &*self.access else {
            return Ok(());
        };
        if let Asker::Member(chain) = asker {
            return match trust.client_chain_trusted(chain) {
                true => Ok(()),
                false => Err("its certificate was revoked".into()),
            };
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        signed_url::check(key, req.uri().path(), req.uri().query(), now).map_err(|e| e.to_string())
    }

    /// Opens the file a request path names, beneath the served directory,
    /// if a published content names it. Blocking.
    fn open_published(&self, url_path: &str) -> Option<std::fs::File> {
        let path = resolve(&self.root, url_path)?;
        let relative = path.strip_prefix(self.root.as_path()).ok()?;
        let fd = rustix::fs::openat2(
            self.root_dir.as_ref(),
            relative,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
            rustix::fs::ResolveFlags::BENEATH | rustix::fs::ResolveFlags::NO_MAGICLINKS,
        )
        .ok()?;
        let file = std::fs::File::from(fd);
        // What was opened, not what the path names now.
        let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()?;
        (real.starts_with(self.root.as_path()) && self.is_published(&real)).then_some(file)
    }

    async fn respond(&self, req: Request<hyper::body::Incoming>, asker: &Asker) -> Response<Body> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return status(StatusCode::METHOD_NOT_ALLOWED);
        }
        if let Err(why) = self.allowed(&req, asker) {
            tracing::debug!(path = req.uri().path(), %why, "file storage refused a request");
            return status(StatusCode::FORBIDDEN);
        }
        let this = self.clone();
        let path = req.uri().path().to_owned();
        let opened = tokio::task::spawn_blocking(move || this.open_published(&path)).await;
        let Ok(Some(file)) = opened else {
            return status(StatusCode::NOT_FOUND);
        };
        let mut file = tokio::fs::File::from_std(file);
        let size = match file.metadata().await {
            Ok(meta) if meta.is_file() => meta.len(),
            _ => return status(StatusCode::NOT_FOUND),
        };
        let range = req.headers().get(RANGE).map(|v| {
            v.to_str()
                .map_err(|_| RangeError::Malformed)
                .and_then(|v| parse_range(v, size))
        });
        let (code, first, last) = match range {
            None if size == 0 => return empty_ok(),
            None => (StatusCode::OK, 0, size - 1),
            Some(Ok((first, last))) => (StatusCode::PARTIAL_CONTENT, first, last),
            Some(Err(RangeError::Malformed)) => return status(StatusCode::BAD_REQUEST),
            Some(Err(RangeError::Unsatisfiable)) => {
                let mut r = status(StatusCode::RANGE_NOT_SATISFIABLE);
                r.headers_mut().insert(
                    CONTENT_RANGE,
                    format!("bytes */{size}").parse().expect("valid header"),
                );
                return r;
            }
        };
        let len = last - first + 1;
        let mut builder = Response::builder()
            .status(code)
            .header(CONTENT_LENGTH, len)
            .header(ACCEPT_RANGES, "bytes");
        if code == StatusCode::PARTIAL_CONTENT {
            builder = builder.header(CONTENT_RANGE, format!("bytes {first}-{last}/{size}"));
        }
        if req.method() == Method::HEAD {
            return builder
                .body(Empty::new().map_err(|never| match never {}).boxed())
                .expect("valid response");
        }
        if file.seek(std::io::SeekFrom::Start(first)).await.is_err() {
            return status(StatusCode::INTERNAL_SERVER_ERROR);
        }
        let served = self.served.clone();
        let chunks = futures_util::stream::unfold((file, len), move |(mut file, left)| {
            let served = served.clone();
            async move {
                if left == 0 {
                    return None;
                }
                let want = usize::try_from(left.min(CHUNK as u64)).expect("chunk fits usize");
                let mut buf = BytesMut::zeroed(want);
                match file.read_exact(&mut buf).await {
                    Ok(_) => {
                        served.fetch_add(want as u64, Ordering::Relaxed);
                        Some((Ok(Frame::data(buf.freeze())), (file, left - want as u64)))
                    }
                    Err(e) => Some((Err(e), (file, 0))),
                }
            }
        });
        builder
            .body(BodyExt::boxed(StreamBody::new(chunks)))
            .expect("valid response")
    }
}

/// A response of `code` with no body: nobody learns a byte from a refusal.
fn status(code: StatusCode) -> Response<Body> {
    let mut r = Response::new(Empty::new().map_err(|never| match never {}).boxed());
    *r.status_mut() = code;
    r
}

fn empty_ok() -> Response<Body> {
    Response::new(Empty::new().map_err(|never| match never {}).boxed())
}
