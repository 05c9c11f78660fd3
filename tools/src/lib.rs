//! Benchmarks and load generators for Branchline. Each binary prints the
//! command that made its figures, the machine, and ratios against a
//! baseline measured in the same run.
//!
//! - `bench-cache`: piece cache write/read throughput and disk bytes per
//!   byte stored, pieces inside sled against piece files with a sled index.
//! - `bench-transfer`: loopback piece throughput between two clients against
//!   curl from nginx, with CPU seconds per GiB and peak RSS.
//! - `bench-registry`: peak RSS of the server with many registered clients.
//! - `bench-console`: the console's page loads and live updates while a
//!   fleet of fake clients rolls a content out (against an idle server).

pub mod fleet;
pub mod nodes;

use std::path::Path;
use std::time::Instant;

/// Bytes allocated on disk under `dir` (blocks, not apparent sizes).
pub fn disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            total += disk_bytes(&entry.path());
        } else {
            total += meta.blocks() * 512;
        }
    }
    total
}

/// A line naming the machine: CPU model, cores, kernel.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpu}, {cores} cores, Linux {}", kernel.trim())
}

/// Prints the command line that is running, for the record.
pub fn print_command() {
    let args: Vec<String> = std::env::args().collect();
    let bin = Path::new(&args[0])
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    println!(
        "command: cargo run --release -p branchline-tools --bin {bin} -- {}",
        args[1..].join(" ")
    );
    println!("machine: {}", machine());
}

/// Seconds since `start`.
pub fn secs(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

/// Pseudo-random bytes (xorshift), fast and deterministic.
pub fn fill_random(buf: &mut [u8], seed: &mut u64) {
    for chunk in buf.chunks_mut(8) {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let bytes = seed.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

/// The tool's options, parsed by clap; a bad one ends the tool with
/// clap's one-line reason and exit code 2 (`--help` prints the help).
pub fn parse_args<T: clap::Parser>() -> T {
    T::try_parse().unwrap_or_else(|e| {
        if !e.use_stderr() {
            e.exit();
        }
        let text = e.to_string();
        eprintln!("{}", text.lines().next().unwrap_or("error: bad arguments"));
        std::process::exit(2)
    })
}
