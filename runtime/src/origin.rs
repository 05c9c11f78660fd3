//! The origin actor: fetches byte ranges from where a content's bytes live,
//! the last resort when no peer holds a piece. `http(s)://` URLs (a CDN, or
//! file storage served over HTTP) get a `Range` request and must answer 206
//! with exactly that range; `file://` URLs (file storage on a share) are read
//! at the offset on a blocking thread.

use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::Duration;

use actix::prelude::*;
use branchline_actors::messages::{FetchError, FetchFromOrigin};
use bytes::{Bytes, BytesMut};

/// Messages the origin actor's mailbox holds at most.
pub const ORIGIN_MAILBOX: usize = 256;

/// An origin URL, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginUrl {
    /// HTTP or HTTPS.
    Http(String),
    /// A local or mounted path.
    File(PathBuf),
}

/// An origin URL that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("origin `{url}` is not usable: {reason}")]
pub struct BadOrigin {
    /// The URL.
    pub url: String,
    /// Why.
    pub reason: &'static str,
}

impl OriginUrl {
    /// Parses an origin URL.
    pub fn parse(url: &str) -> Result<Self, BadOrigin> {
        let bad = |reason| BadOrigin {
            url: url.to_owned(),
            reason,
        };
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(bad(
                    "a file:// URL needs an absolute path (file:///srv/pkg.bin)",
                ));
            }
            return Ok(OriginUrl::File(PathBuf::from(path)));
        }
        if url.starts_with("http://") || url.starts_with("https://") {
            return reqwest::Url::parse(url)
                .map(|_| OriginUrl::Http(url.to_owned()))
                .map_err(|_| bad("not a valid URL"));
        }
        Err(bad(
            "only http://, https:// and file:// origins are supported",
        ))
    }
}

/// The origin actor.
pub struct Origin {
    http: reqwest::Client,
}

impl Origin {
    /// An origin fetcher with its own HTTP client; with the node's
    /// `identity` it reaches the cluster's file storage as a member (see
    /// [`crate::origin_tls`]).
    pub fn new(identity: Option<&crate::tls::Identity>) -> Result<Self, OriginSetupError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(8)
            .no_proxy();
        if let Some(identity) = identity {
            builder =
                builder.tls_backend_preconfigured(crate::origin_tls::client_config(identity)?);
        }
        Ok(Origin {
            http: builder.build()?,
        })
    }
}

/// Why the origin fetcher could not be made.
#[derive(Debug, thiserror::Error)]
pub enum OriginSetupError {
    /// The HTTP client.
    #[error("making the HTTP client failed: {0}")]
    Http(#[from] reqwest::Error),
    /// Its TLS.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

impl Actor for Origin {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(ORIGIN_MAILBOX);
    }
}

branchline_actors::supervised_controls!(Origin);

impl Supervised for Origin {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!("origin actor restarting");
    }
}

impl Handler<FetchFromOrigin> for Origin {
    type Result = ResponseFuture<Result<Bytes, FetchError>>;
    fn handle(&mut self, msg: FetchFromOrigin, _: &mut Context<Self>) -> Self::Result {
        branchline_actors::supervision::handled();
        let http = self.http.clone();
        Box::pin(async move {
            match OriginUrl::parse(&msg.url).map_err(|e| FetchError::Protocol(e.to_string()))? {
                OriginUrl::Http(url) => fetch_http(&http, &url, msg.offset, msg.len).await,
                OriginUrl::File(path) => fetch_file(path, msg.offset, msg.len).await,
            }
        })
    }
}

async fn fetch_http(
    http: &reqwest::Client,
    url: &str,
    offset: u64,
    len: u64,
) -> Result<Bytes, FetchError> {
    if len == 0 {
        return Ok(Bytes::new());
    }
    let range = format!("bytes={}-{}", offset, offset + len - 1);
    let mut response = http
        .get(url)
        .header(reqwest::header::RANGE, &range)
        .send()
        .await
        .map_err(|e| FetchError::Unreachable(format!("{url}: {e}")))?;
    let status = response.status();
    if status != reqwest::StatusCode::PARTIAL_CONTENT {
        return Err(FetchError::Protocol(format!(
            "{url} answered {status} to Range {range}, expected 206"
        )));
    }
    let expected = format!("bytes {}-{}/", offset, offset + len - 1);
    let content_range = response
        .headers()
        .get(reqwest::header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_range.starts_with(&expected) {
        return Err(FetchError::Protocol(format!(
            "{url} sent Content-Range `{content_range}` for Range {range}"
        )));
    }
    let want = usize::try_from(len).map_err(|_| FetchError::Protocol("range too large".into()))?;
    let mut buf = BytesMut::with_capacity(want);
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| FetchError::Unreachable(format!("{url}: {e}")))?
    {
        if buf.len() + chunk.len() > want {
            return Err(FetchError::Protocol(format!(
                "{url} sent more than the {want} bytes asked for"
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    if buf.len() != want {
        return Err(FetchError::Protocol(format!(
            "{url} sent {} of {want} bytes",
            buf.len()
        )));
    }
    Ok(buf.freeze())
}

async fn fetch_file(path: PathBuf, offset: u64, len: u64) -> Result<Bytes, FetchError> {
    let want = usize::try_from(len).map_err(|_| FetchError::Protocol("range too large".into()))?;
    let job = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        let file = std::fs::File::open(&path)?;
        let mut buf = vec![0u8; want];
        file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    });
    match job.await {
        Ok(Ok(buf)) => Ok(Bytes::from(buf)),
        Ok(Err(e)) => Err(FetchError::Unreachable(e.to_string())),
        Err(e) => Err(FetchError::Unreachable(format!(
            "origin read worker failed: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_urls_parse_or_say_why_not() {
        assert_eq!(
            OriginUrl::parse("file:///srv/p.bin"),
            Ok(OriginUrl::File("/srv/p.bin".into()))
        );
        assert!(matches!(
            OriginUrl::parse("http://127.0.0.1:8080/p.bin"),
            Ok(OriginUrl::Http(_))
        ));
        let err = OriginUrl::parse("ftp://x/p").unwrap_err();
        assert_eq!(
            err.to_string(),
            "origin `ftp://x/p` is not usable: only http://, https:// and file:// origins are supported"
        );
        assert!(OriginUrl::parse("file://relative/p").is_err());
        assert!(OriginUrl::parse("http://").is_err());
    }

    /// An HTTP server on loopback that answers every request with
    /// `response` (after reading its head) and closes; returns its URL.
    async fn answering(response: Vec<u8>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.31.250.1:0")
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.unwrap_or(0) == 1
                {
                    head.push(byte[0]);
                }
                let _ = stream.write_all(&response).await;
                let _ = stream.shutdown().await;
            }
        });
        format!("http://{addr}/p.bin")
    }

    /// What fetching bytes 0-9 from an origin that answers `response` gives.
    fn fetch_from(response: Vec<u8>) -> Result<Bytes, FetchError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // As main does: reqwest uses the process-wide provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        rt.block_on(async {
            let url = answering(response).await;
            let http = Origin::new(None).unwrap().http;
            fetch_http(&http, &url, 0, 10).await
        })
    }

    fn answer(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
        let mut out =
            format!("HTTP/1.1 {status}\r\n{headers}Connection: close\r\n\r\n").into_bytes();
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn hostile_range_answers_are_refused_naming_what_was_wrong() {
        let ten = b"0123456789";
        let range = "Content-Range: bytes 0-9/100\r\n";
        assert_eq!(
            fetch_from(answer(
                "206 Partial Content",
                &format!("{range}Content-Length: 10\r\n"),
                ten
            ))
            .unwrap(),
            Bytes::from_static(ten)
        );
        let cases: [(Vec<u8>, &str); 6] = [
            // The whole file instead of the range.
            (
                answer("200 OK", "Content-Length: 100\r\n", &[b'x'; 100]),
                "answered 200 OK to Range bytes=0-9, expected 206",
            ),
            (
                answer("404 Not Found", "Content-Length: 0\r\n", b""),
                "answered 404 Not Found",
            ),
            // Another range than the one asked for.
            (
                answer(
                    "206 Partial Content",
                    "Content-Range: bytes 5-14/100\r\nContent-Length: 10\r\n",
                    ten,
                ),
                "sent Content-Range `bytes 5-14/100` for Range bytes=0-9",
            ),
            (
                answer("206 Partial Content", "Content-Length: 10\r\n", ten),
                "sent Content-Range `` for Range bytes=0-9",
            ),
            // More than asked: refused at the first byte too many, not
            // read to the end (the body here is 8 MiB).
            (
                answer(
                    "206 Partial Content",
                    &format!("{range}Content-Length: 8388608\r\n"),
                    &vec![b'y'; 8 << 20],
                ),
                "sent more than the 10 bytes asked for",
            ),
            // Fewer than asked, the body ended early (no length given).
            (
                answer("206 Partial Content", range, b"0123"),
                "sent 4 of 10 bytes",
            ),
        ];
        for (response, expected) in cases {
            let err = fetch_from(response).unwrap_err();
            assert!(
                err.to_string().contains(expected),
                "{err} (expected {expected:?})"
            );
        }
        // A body cut short of its declared length, and an origin that
        // hangs up at once: the origin is unreachable for this piece.
        let cut = answer(
            "206 Partial Content",
            &format!("{range}Content-Length: 10\r\n"),
            b"0123",
        );
        assert!(matches!(fetch_from(cut), Err(FetchError::Unreachable(_))));
        assert!(matches!(
            fetch_from(Vec::new()),
            Err(FetchError::Unreachable(_))
        ));
    }
}
