//! A test origin: a small HTTP/1.1 server with `Range`, independent of the
//! code under test. It counts the body bytes and the range requests it
//! serves, can flip one byte at a given offset (a corrupt source), can
//! delay every request (a slow WAN), and can hold every request after the
//! first few until the test releases them (a download that is certainly
//! still under way, however slow the machine). A request whose asker hung
//! up while it waited is not answered, so it is not counted.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
pub struct OriginStats {
    pub bytes: AtomicU64,
    pub requests: AtomicU64,
    pub ranges: Mutex<Vec<(u64, u64)>>,
    /// Requests read so far (answered or not).
    arrived: AtomicU64,
    /// Held requests may go on.
    released: AtomicBool,
}

pub struct TestOrigin {
    pub addr: SocketAddr,
    pub stats: Arc<OriginStats>,
    stop: Arc<AtomicBool>,
}

#[derive(Clone, Default)]
pub struct OriginOptions {
    /// Flip the byte at this offset of the file in every response covering it.
    pub flip_at: Option<u64>,
    /// Sleep this long before answering each request.
    pub delay: Duration,
    /// Hold every request after this many until [`TestOrigin::release`].
    pub hold_after: Option<u64>,
}

impl TestOrigin {
    /// Serves `file` at `/<name>` on `addr`.
    pub fn start(addr: SocketAddr, file: PathBuf, options: OriginOptions) -> Self {
        let listener = TcpListener::bind(addr).unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(OriginStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (stats2, stop2) = (stats.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (file, stats, options) = (file.clone(), stats2.clone(), options.clone());
                std::thread::spawn(move || serve(stream, &file, &stats, &options));
            }
        });
        TestOrigin { addr, stats, stop }
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }

    pub fn bytes(&self) -> u64 {
        self.stats.bytes.load(Ordering::Relaxed)
    }

    /// Lets the held requests (and every later one) be answered.
    pub fn release(&self) {
        self.stats.released.store(true, Ordering::Relaxed);
    }
}

impl Drop for TestOrigin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(stream: TcpStream, file: &PathBuf, stats: &OriginStats, options: &OriginOptions) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut range = None;
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some(value) = header
                .strip_prefix("range: ")
                .or_else(|| header.strip_prefix("Range: "))
            {
                let spec = value.trim_start_matches("bytes=");
                let (a, b) = spec.split_once('-').unwrap();
                range = Some((a.parse::<u64>().unwrap(), b.parse::<u64>().unwrap()));
            }
        }
        let arrived = stats.arrived.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(options.delay);
        if options.hold_after.is_some_and(|n| arrived >= n) {
            while !stats.released.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if asker_hung_up(&writer) {
            return;
        }
        let handle = std::fs::File::open(file).unwrap();
        let size = handle.metadata().unwrap().len();
        let (first, last) = range.unwrap_or((0, size - 1));
        let last = last.min(size - 1);
        let mut body = vec![0u8; usize::try_from(last - first + 1).unwrap()];
        handle.read_exact_at(&mut body, first).unwrap();
        if let Some(at) = options.flip_at.filter(|at| (first..=last).contains(at)) {
            body[usize::try_from(at - first).unwrap()] ^= 0xff;
        }
        let status = if range.is_some() {
            "206 Partial Content"
        } else {
            "200 OK"
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Range: bytes {first}-{last}/{size}\r\nAccept-Ranges: bytes\r\n\r\n",
            body.len()
        );
        if writer
            .write_all(head.as_bytes())
            .and_then(|_| writer.write_all(&body))
            .is_err()
        {
            return;
        }
        stats.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        stats.requests.fetch_add(1, Ordering::Relaxed);
        stats.ranges.lock().unwrap().push((first, last));
    }
}

/// True if the other end closed the connection (its process was killed
/// while the request waited).
fn asker_hung_up(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let peeked = stream.peek(&mut [0u8; 1]);
    stream.set_nonblocking(false).unwrap();
    match peeked {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}
