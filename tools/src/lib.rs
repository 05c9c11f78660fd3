//! Benchmarks and load generators for Branchline. Each binary prints the
//! command that made its figures, the machine, and ratios against a
//! baseline measured in the same run.
//!
//! - `bench-cache`: piece cache write/read throughput and disk bytes per
//!   byte stored, pieces inside sled against piece files with a sled index.
//! - `bench-transfer`: loopback piece throughput between two clients against
//!   curl from nginx, with CPU seconds per GiB and peak RSS.
//! - `bench-registry`: peak RSS of the server with many registered clients.

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

/// Refuses anything on the command line but `--name value` pairs of the
/// `known` names (one line, exit code 2), so a mistyped option does not
/// run the tool with its default; `--help` lists them.
pub fn check_args(known: &[&str]) {
    let args: Vec<String> = std::env::args().collect();
    let program = args.first().map_or("", String::as_str);
    let options = known.join(" N, ") + " N";
    let mut rest = args.iter().skip(1);
    while let Some(name) = rest.next() {
        if name == "--help" || name == "-h" {
            println!("usage: {program} [{}]", known.join(" N] [") + " N");
            std::process::exit(0);
        }
        if !known.contains(&name.as_str()) {
            eprintln!("{program}: unknown argument `{name}` (it takes {options})");
            std::process::exit(2);
        }
        if rest.next().is_none() {
            eprintln!("{program}: {name} needs a value");
            std::process::exit(2);
        }
    }
}

/// Parses `--name value` from the command line, with a default. A value
/// that does not parse ends the program with a one-line error and exit
/// code 2.
pub fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    let Some(value) = args
        .iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
    else {
        return default;
    };
    value.parse().unwrap_or_else(|_| {
        let program = args.first().map_or("", String::as_str);
        eprintln!("{program}: bad value for {name}: `{value}`");
        std::process::exit(2)
    })
}
