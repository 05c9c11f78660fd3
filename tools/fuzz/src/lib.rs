//! What the fuzz targets share: running a future that never waits (the
//! readers here are in memory), a reader that hands its bytes out in
//! chunks the input chooses (so frames straddle reads as they do on a
//! QUIC stream), and one cluster identity made once (for revocation lists
//! and signed publications).

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, ReadBuf};

/// Runs `future` to its end; it must never wait on anything outside.
pub fn run<T>(future: impl Future<Output = T>) -> T {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
    }
}

/// An in-memory reader that gives its bytes out in chunks of the sizes
/// `sizes` cycles through (at least one byte each).
pub struct Chunked<'a> {
    data: &'a [u8],
    sizes: &'a [u8],
    turn: usize,
}

impl<'a> Chunked<'a> {
    /// The first byte of `input` says how many chunk sizes follow; the rest
    /// is the stream.
    pub fn new(input: &'a [u8]) -> Self {
        let (count, rest) = input.split_first().map_or((0, input), |(c, r)| (*c as usize % 8, r));
        let (sizes, data) = rest.split_at(count.min(rest.len()));
        Chunked { data, sizes, turn: 0 }
    }
}

impl AsyncRead for Chunked<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let size = match self.sizes.get(self.turn % self.sizes.len().max(1)) {
            Some(&s) => usize::from(s).max(1),
            None => usize::MAX,
        };
        self.turn += 1;
        let n = size.min(buf.remaining()).min(self.data.len());
        buf.put_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Poll::Ready(Ok(()))
    }
}

/// A cluster CA and a server identity issued by it, made once per process.
pub fn identity() -> &'static branchline::tls::Identity {
    static IDENTITY: OnceLock<branchline::tls::Identity> = OnceLock::new();
    IDENTITY.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory").keep();
        let ca = dir.join("ca");
        branchline::pki::init(&ca).expect("a CA");
        let (cert, key) = branchline::pki::issue(&ca, branchline::pki::Role::Server, "server", &dir)
            .expect("a certificate");
        let crl = ca.join(branchline::pki::CRL);
        branchline::tls::Identity::load(&ca.join(branchline::pki::CA_CERT), &cert, &key, Some(&crl))
            .expect("the identity loads")
    })
}
