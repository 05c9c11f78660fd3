//! The embedded file storage: serves a directory over HTTP/1.1 with `Range`,
//! as the origin of last resort for one-machine and small setups. Off unless
//! configured. It counts the body bytes it sends, which is how the demo and
//! the tests measure origin traffic from outside the clients.
//!
//! Only files under the directory that a published content names as an
//! origin are served (B6): anything else under it, paths with `..`, hidden
//! segments or anything that resolves outside the directory get 404. The
//! server allows each content's origins when it is published, and again
//! for every stored content when the server starts.

use std::collections::HashSet;
use std::convert::Infallible;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bytes::{Bytes, BytesMut};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;
use hyper::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, RANGE};
use hyper::{Method, Request, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Bytes read from disk per body chunk.
const CHUNK: usize = 256 * 1024;

type Body = BoxBody<Bytes, std::io::Error>;

/// A `Range` header that cannot be served.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeError {
    /// Not of the form `bytes=a-b`, `bytes=a-` or `bytes=-n` (one range).
    Malformed,
    /// Outside the file.
    Unsatisfiable,
}

/// Parses a single-range `Range` header against a file of `size` bytes;
/// returns the inclusive byte range.
pub fn parse_range(header: &str, size: u64) -> Result<(u64, u64), RangeError> {
    let spec = header
        .trim()
        .strip_prefix("bytes=")
        .ok_or(RangeError::Malformed)?;
    if spec.contains(',') {
        return Err(RangeError::Malformed);
    }
    let (start, end) = spec.split_once('-').ok_or(RangeError::Malformed)?;
    let number = |s: &str| s.trim().parse::<u64>().map_err(|_| RangeError::Malformed);
    let (first, last) = match (start.trim().is_empty(), end.trim().is_empty()) {
        (true, true) => return Err(RangeError::Malformed),
        (true, false) => {
            let suffix = number(end)?;
            if suffix == 0 || size == 0 {
                return Err(RangeError::Unsatisfiable);
            }
            (size.saturating_sub(suffix), size - 1)
        }
        (false, true) => (number(start)?, size.saturating_sub(1)),
        (false, false) => (number(start)?, number(end)?.min(size.saturating_sub(1))),
    };
    if first >= size || first > last {
        return Err(RangeError::Unsatisfiable);
    }
    Ok((first, last))
}

/// Maps a request path to a file under `root`, or `None` if it would leave
/// it. `%XX` escapes are decoded; `..`, `.` and hidden segments are refused.
pub fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(url_path.split('?').next()?)?;
    let mut out = root.to_path_buf();
    for component in Path::new(decoded.trim_start_matches('/')).components() {
        match component {
            Component::Normal(part) if !part.to_string_lossy().starts_with('.') => out.push(part),
            _ => return None,
        }
    }
    (out != root).then_some(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().filter(|s| !s.contains('\0'))
}

/// The file storage server.
#[derive(Clone)]
pub struct FileStorage {
    root: Arc<PathBuf>,
    served: Arc<AtomicU64>,
    /// The real paths of the files published contents name as origins.
    published: Arc<RwLock<HashSet<PathBuf>>>,
}

impl FileStorage {
    /// Serves `root` (which must exist).
    pub fn new(root: &Path) -> std::io::Result<Self> {
        Ok(FileStorage {
            root: Arc::new(root.canonicalize()?),
            served: Arc::new(AtomicU64::new(0)),
            published: Arc::default(),
        })
    }

    /// Allows the files that `origins` name under `base_url` (this storage's
    /// URL); other origins are not this storage's and are skipped, as are
    /// files that do not exist.
    pub fn allow(&self, base_url: &str, origins: &[String]) {
        let base = base_url.trim_end_matches('/');
        let files = origins
            .iter()
            .filter_map(|o| o.strip_prefix(base).filter(|p| p.starts_with('/')))
            .filter_map(|p| resolve(&self.root, p)?.canonicalize().ok())
            .filter(|real| real.starts_with(self.root.as_path()));
        let mut published = self
            .published
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        published.extend(files);
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

    /// The directory served.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Accepts connections until the listener fails; run it on an arbiter.
    pub async fn serve(self, listener: tokio::net::TcpListener) {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "file storage accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let this = self.clone();
            actix_rt::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let this = this.clone();
                    async move { Ok::<_, Infallible>(this.respond(req).await) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await
                {
                    tracing::debug!(error = %e, "file storage connection ended with an error");
                }
            });
        }
    }

    async fn respond(&self, req: Request<hyper::body::Incoming>) -> Response<Body> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return status(StatusCode::METHOD_NOT_ALLOWED);
        }
        let Some(path) = resolve(&self.root, req.uri().path()) else {
            return status(StatusCode::NOT_FOUND);
        };
        // A symlink inside the directory must not lead outside it, and
        // only what was published is served.
        match tokio::fs::canonicalize(&path).await {
            Ok(real) if real.starts_with(self.root.as_path()) && self.is_published(&real) => {}
            _ => return status(StatusCode::NOT_FOUND),
        }
        let Ok(mut file) = tokio::fs::File::open(&path).await else {
            return status(StatusCode::NOT_FOUND);
        };
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

fn status(code: StatusCode) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(code.canonical_reason().unwrap_or("error")))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = code;
    r
}

fn empty_ok() -> Response<Body> {
    Response::new(Empty::new().map_err(|never| match never {}).boxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_as_rfc_9110_says() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Ok((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Ok((90, 99)));
        assert_eq!(parse_range("bytes=95-200", 100), Ok((95, 99)));
        assert_eq!(
            parse_range("bytes=100-", 100),
            Err(RangeError::Unsatisfiable)
        );
        assert_eq!(
            parse_range("bytes=5-4", 100),
            Err(RangeError::Unsatisfiable)
        );
        assert_eq!(
            parse_range("bytes=0-1,5-6", 100),
            Err(RangeError::Malformed)
        );
        assert_eq!(parse_range("items=0-1", 100), Err(RangeError::Malformed));
        assert_eq!(parse_range("bytes=-", 100), Err(RangeError::Malformed));
        assert_eq!(parse_range("bytes=a-b", 100), Err(RangeError::Malformed));
    }

    #[test]
    fn paths_never_leave_the_root() {
        let root = Path::new("/srv/pkgs");
        assert_eq!(
            resolve(root, "/a/b.bin"),
            Some(PathBuf::from("/srv/pkgs/a/b.bin"))
        );
        assert_eq!(
            resolve(root, "/my%20pkg.bin"),
            Some(PathBuf::from("/srv/pkgs/my pkg.bin"))
        );
        for bad in [
            "/../etc/passwd",
            "/a/../../x",
            "/%2e%2e/x",
            "/.hidden",
            "/",
            "/a%00b",
            "/%zz",
        ] {
            assert_eq!(resolve(root, bad), None, "{bad}");
        }
    }
}
