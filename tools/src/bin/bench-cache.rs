//! Piece cache throughput and disk use for 1 MiB pieces: pieces inside sled
//! against piece bytes in one file per content with sled holding the index
//! (Branchline's `PieceCache`), side by side in one run, with one writer and
//! with many (a download has 16 pieces in flight). Both verify each piece's
//! BLAKE3 before storing and after reading, and both make each piece
//! durable before counting it (sled flush; or file sync, then sled flush).

use std::time::Instant;

use branchline_storage::content::DEFAULT_PIECE_SIZE;
use branchline_storage::{CacheConfig, Hash, Manifest, PieceCache};
use branchline_tools::{disk_bytes, fill_random, print_command, secs};
use clap::Parser;

struct Figures {
    write_mbs: f64,
    read_mbs: f64,
    disk_per_byte: f64,
}

/// Piece cache write and read throughput: pieces inside sled against piece
/// files with a sled index.
#[derive(Parser)]
struct Args {
    /// MiB of pieces to store.
    #[arg(long, default_value_t = 512)]
    mib: usize,
    /// Threads writing at once.
    #[arg(long, default_value_t = 16)]
    writers: usize,
}

fn main() {
    let Args { mib, writers } = branchline_tools::parse_args::<Args>();
    print_command();
    let size = mib * 1024 * 1024;
    let mut seed = 0x1234_5678_9abc_def1;
    let mut data = vec![0u8; size];
    fill_random(&mut data, &mut seed);
    let manifest =
        Manifest::from_reader("bench.bin", &data[..], DEFAULT_PIECE_SIZE, |_| {}).unwrap();
    println!(
        "{} pieces of 1 MiB ({mib} MiB), each verified and made durable before it counts",
        manifest.piece_count()
    );
    println!();
    println!("| layout | threads | write MB/s | read MB/s | disk bytes per byte stored |");
    println!("|---|---|---|---|---|");
    for threads in [1, writers] {
        let in_sled = bench_sled(&data, &manifest, threads);
        let file = bench_piece_cache(&data, &manifest, threads);
        for (name, f) in [
            ("pieces inside sled", &in_sled),
            ("piece file + sled index (chosen)", &file),
        ] {
            println!(
                "| {name} | {threads} | {:.0} | {:.0} | {:.3} |",
                f.write_mbs, f.read_mbs, f.disk_per_byte
            );
        }
        println!(
            "| ratio file/sled | {threads} | {:.2}x | {:.2}x | {:.2}x |",
            file.write_mbs / in_sled.write_mbs,
            file.read_mbs / in_sled.read_mbs,
            file.disk_per_byte / in_sled.disk_per_byte
        );
    }
}

fn mbs(bytes: usize, seconds: f64) -> f64 {
    bytes as f64 / 1e6 / seconds
}

/// Runs `job(i)` for every piece on `threads` threads (piece `i` on thread
/// `i % threads`); returns the seconds taken.
fn parallel(pieces: u32, threads: usize, job: impl Fn(u32) + Sync) -> f64 {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let job = &job;
            scope.spawn(move || {
                for i in (0..pieces).filter(|i| *i as usize % threads == t) {
                    job(i);
                }
            });
        }
    });
    secs(start)
}

fn bench_sled(data: &[u8], manifest: &Manifest, threads: usize) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::Config::new()
        .path(dir.path())
        .cache_capacity(4 << 20)
        .open()
        .unwrap();
    let tree = db.open_tree("pieces").unwrap();
    let pieces = manifest.piece_count();
    let write = parallel(pieces, threads, |i| {
        let piece = piece(data, manifest, i);
        manifest.verify_piece(i, piece).unwrap();
        tree.insert(i.to_be_bytes(), piece).unwrap();
        db.flush().unwrap();
    });
    let read = parallel(pieces, threads, |i| {
        let bytes = tree.get(i.to_be_bytes()).unwrap().unwrap();
        assert_eq!(Hash::of(&bytes), manifest.piece_hashes[i as usize]);
    });
    drop(tree);
    db.flush().unwrap();
    drop(db);
    figures(data.len(), write, read, disk_bytes(dir.path()))
}

fn bench_piece_cache(data: &[u8], manifest: &Manifest, threads: usize) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let config = CacheConfig {
        dir: dir.path().into(),
        quota_bytes: u64::MAX,
        sled_cache_bytes: 4 << 20,
    };
    let cache = PieceCache::open(&config).unwrap();
    let id = manifest.content_id();
    cache.add(manifest, false).unwrap();
    let pieces = manifest.piece_count();
    let write = parallel(pieces, threads, |i| {
        cache.put_piece(&id, i, piece(data, manifest, i)).unwrap();
    });
    let read = parallel(pieces, threads, |i| {
        cache.read_piece(&id, i).unwrap();
    });
    drop(cache);
    figures(data.len(), write, read, disk_bytes(dir.path()))
}

fn figures(bytes: usize, write: f64, read: f64, disk: u64) -> Figures {
    Figures {
        write_mbs: mbs(bytes, write),
        read_mbs: mbs(bytes, read),
        disk_per_byte: disk as f64 / bytes as f64,
    }
}

fn piece<'a>(data: &'a [u8], m: &Manifest, i: u32) -> &'a [u8] {
    let start = usize::try_from(m.piece_offset(i)).unwrap();
    &data[start..start + usize::try_from(m.piece_len(i)).unwrap()]
}
