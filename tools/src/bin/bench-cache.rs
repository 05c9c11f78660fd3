//! Piece cache throughput and disk use for 1 MiB pieces: pieces inside sled
//! against piece bytes in one file per content with sled holding the index
//! (Branchline's `PieceCache`), side by side in one run. Both verify each
//! piece's BLAKE3 before storing and after reading, and both make each piece
//! durable before counting it (sled flush; or file sync, then sled flush).

use std::time::Instant;

use branchline_storage::content::DEFAULT_PIECE_SIZE;
use branchline_storage::{CacheConfig, Hash, Manifest, PieceCache};
use branchline_tools::{arg, disk_bytes, fill_random, print_command, secs};

struct Figures {
    write_mbs: f64,
    read_mbs: f64,
    disk_per_byte: f64,
}

fn main() {
    print_command();
    let mib: usize = arg("--mib", 512);
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

    let in_sled = bench_sled(&data, &manifest);
    let file = bench_piece_cache(&data, &manifest);
    println!();
    println!("| layout | write MB/s | read MB/s | disk bytes per byte stored |");
    println!("|---|---|---|---|");
    for (name, f) in [
        ("pieces inside sled", &in_sled),
        ("piece file + sled index (chosen)", &file),
    ] {
        println!(
            "| {name} | {:.0} | {:.0} | {:.3} |",
            f.write_mbs, f.read_mbs, f.disk_per_byte
        );
    }
    println!(
        "ratios file/sled: write {:.2}x, read {:.2}x, disk {:.2}x",
        file.write_mbs / in_sled.write_mbs,
        file.read_mbs / in_sled.read_mbs,
        file.disk_per_byte / in_sled.disk_per_byte
    );
}

fn mbs(bytes: usize, seconds: f64) -> f64 {
    bytes as f64 / 1e6 / seconds
}

fn bench_sled(data: &[u8], manifest: &Manifest) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::Config::new()
        .path(dir.path())
        .cache_capacity(4 << 20)
        .open()
        .unwrap();
    let tree = db.open_tree("pieces").unwrap();
    let start = Instant::now();
    for i in 0..manifest.piece_count() {
        let piece = piece(data, manifest, i);
        manifest.verify_piece(i, piece).unwrap();
        tree.insert(i.to_be_bytes(), piece).unwrap();
        db.flush().unwrap();
    }
    let write = secs(start);
    let start = Instant::now();
    for i in 0..manifest.piece_count() {
        let bytes = tree.get(i.to_be_bytes()).unwrap().unwrap();
        assert_eq!(Hash::of(&bytes), manifest.piece_hashes[i as usize]);
    }
    let read = secs(start);
    drop(tree);
    db.flush().unwrap();
    drop(db);
    Figures {
        write_mbs: mbs(data.len(), write),
        read_mbs: mbs(data.len(), read),
        disk_per_byte: disk_bytes(dir.path()) as f64 / data.len() as f64,
    }
}

fn bench_piece_cache(data: &[u8], manifest: &Manifest) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let cache = PieceCache::open(&CacheConfig {
        dir: dir.path().into(),
        quota_bytes: u64::MAX,
        sled_cache_bytes: 4 << 20,
    })
    .unwrap();
    let id = manifest.content_id();
    cache.add(manifest, false).unwrap();
    let start = Instant::now();
    for i in 0..manifest.piece_count() {
        cache.put_piece(&id, i, piece(data, manifest, i)).unwrap();
    }
    let write = secs(start);
    let start = Instant::now();
    for i in 0..manifest.piece_count() {
        cache.read_piece(&id, i).unwrap();
    }
    let read = secs(start);
    drop(cache);
    Figures {
        write_mbs: mbs(data.len(), write),
        read_mbs: mbs(data.len(), read),
        disk_per_byte: disk_bytes(dir.path()) as f64 / data.len() as f64,
    }
}

fn piece<'a>(data: &'a [u8], m: &Manifest, i: u32) -> &'a [u8] {
    let start = usize::try_from(m.piece_offset(i)).unwrap();
    &data[start..start + usize::try_from(m.piece_len(i)).unwrap()]
}
