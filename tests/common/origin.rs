//! A test origin: a small HTTP/1.1 server with `Range`, independent of the
//! code under test. It counts the body bytes and the range requests it
//! serves, can flip one byte at a given offset (a corrupt source), and can
//! delay every request (a slow WAN).

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
        std::thread::sleep(options.delay);
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
