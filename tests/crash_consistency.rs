//! Crash consistency beyond `kill -9` (which keeps the page cache): each
//! node's data directory lives on an ext4 file system in a loop-mounted
//! image, with the kernel's periodic writeback turned off for the test, so
//! what a node wrote and did not sync stays in memory only. At each crash
//! point the node is killed and the image copied at once: the copy is what
//! the disk would hold after a power cut (synced data only; `unsynced`
//! files come back empty, checked first). Each copy is then mounted and
//! checked:
//!
//! - a client's cache: it opens, and every piece its have-maps mark reads
//!   back with the right hash (the rule: verify, write, sync, mark);
//! - the server's metadata: it opens intact, and holds every content whose
//!   publish was acknowledged before the crash.
//!
//! `BRANCHLINE_CRASH_POINTS` crash points for each (default 50), at seeded
//! random moments (`BRANCHLINE_CRASH_SEED`). Needs root, loop devices and
//! ext4 (CI runs as root).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use branchline_storage::self_check;
use branchline_storage::{CacheConfig, MetaStore, PieceCache};
use common::origin::{OriginOptions, TestOrigin};
use common::{World, make_package, path_arg, run};

const VM: &str = "/proc/sys/vm";
/// The kernel's writeback settings the test changes, and puts back.
const SETTINGS: [(&str, &str); 2] = [
    ("dirty_writeback_centisecs", "0"),
    ("dirty_expire_centisecs", "360000"),
];

/// The kernel's writeback off while it lives, as it was when it drops.
struct WritebackOff {
    saved: Vec<(String, String)>,
}

impl WritebackOff {
    fn new() -> Self {
        let saved = SETTINGS
            .iter()
            .map(|(name, value)| {
                let path = format!("{VM}/{name}");
                let old = std::fs::read_to_string(&path).unwrap().trim().to_owned();
                std::fs::write(&path, value).unwrap();
                (path, old)
            })
            .collect();
        WritebackOff { saved }
    }
}

impl Drop for WritebackOff {
    fn drop(&mut self) {
        for (path, old) in &self.saved {
            let _ = std::fs::write(path, old);
        }
    }
}

/// Disk images one thread of the test mounts; what is still mounted is
/// unmounted when it drops.
#[derive(Default)]
struct Crashable {
    mounts: Vec<PathBuf>,
}

impl Crashable {
    /// Makes an ext4 image of `mib` MiB at `image` and mounts it at `at`.
    fn image(&mut self, image: &Path, at: &Path, mib: u64) {
        let file = std::fs::File::create(image).unwrap();
        file.set_len(mib << 20).unwrap();
        sh("mkfs.ext4", &["-q", "-F", &path_arg(image)]);
        self.mount(image, at);
    }

    /// Loop-mounts `image` at `at` (a long journal interval: commits come
    /// from syncs, as on a quiet disk).
    fn mount(&mut self, image: &Path, at: &Path) {
        std::fs::create_dir_all(at).unwrap();
        sh(
            "mount",
            &["-o", "loop,commit=300", &path_arg(image), &path_arg(at)],
        );
        self.mounts.push(at.to_owned());
    }

    fn unmount(&mut self, at: &Path) {
        sh("umount", &[&path_arg(at)]);
        self.mounts.retain(|m| m != at);
    }

    /// What the disk holds after a power cut now: a copy of `image`
    /// mounted at `at`. The node must have been killed first.
    fn power_cut(&mut self, image: &Path, copy: &Path, at: &Path) {
        std::fs::copy(image, copy).unwrap();
        self.mount(copy, at);
    }
}

impl Drop for Crashable {
    fn drop(&mut self) {
        for at in self.mounts.drain(..).rev() {
            let _ = Command::new("umount").arg(&at).status();
        }
    }
}

fn sh(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// xorshift: the same moments for the same seed.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The harness itself: unsynced data is gone after a power cut, synced
/// data is there.
fn check_the_harness(crash: &mut Crashable, world: &World) {
    let (image, at, copy, seen) = (
        world.path("probe.img"),
        world.path("probe"),
        world.path("probe-cut.img"),
        world.path("probe-cut"),
    );
    crash.image(&image, &at, 32);
    std::fs::write(at.join("unsynced"), vec![7u8; 1 << 20]).unwrap();
    let synced = std::fs::File::create(at.join("synced")).unwrap();
    std::io::Write::write_all(&mut &synced, &[9u8; 1 << 20]).unwrap();
    synced.sync_all().unwrap();
    drop(synced);
    crash.power_cut(&image, &copy, &seen);
    assert_eq!(
        std::fs::read(seen.join("synced")).unwrap(),
        vec![9u8; 1 << 20]
    );
    let lost = std::fs::read(seen.join("unsynced")).unwrap_or_default();
    assert!(lost.is_empty(), "unsynced data survived the power cut");
    crash.unmount(&seen);
    crash.unmount(&at);
}

/// The client's and the server's power cuts run side by side, each in a
/// world (addresses, images) of its own and with dice of its own.
#[test]
fn no_power_cut_leaves_a_marked_piece_bad_or_the_servers_metadata_broken() {
    let points = setting("BRANCHLINE_CRASH_POINTS", 50);
    let seed = setting("BRANCHLINE_CRASH_SEED", 20261204);
    let _writeback = WritebackOff::new();
    let probe = World::new(31, 38);
    check_the_harness(&mut Crashable::default(), &probe);
    std::thread::scope(|threads| {
        threads.spawn(|| {
            let started = Instant::now();
            let world = World::new(31, 38);
            let mut dice = Dice(seed | 1);
            client_power_cuts(&world, &mut Crashable::default(), &mut dice, points);
            eprintln!(
                "client: {points} power cuts checked in {:?}",
                started.elapsed()
            );
        });
        threads.spawn(|| {
            let started = Instant::now();
            let world = World::new(31, 27);
            let mut dice = Dice(seed.rotate_left(32) | 1);
            server_power_cuts(&world, &mut Crashable::default(), &mut dice, points);
            eprintln!(
                "server: {points} power cuts checked in {:?}",
                started.elapsed()
            );
        });
    });
}

fn client_power_cuts(world: &World, crash: &mut Crashable, dice: &mut Dice, points: u64) {
    let storage = world.path("storage");
    std::fs::create_dir_all(&storage).unwrap();
    let mut origins = Vec::new();
    let _server = world.server();
    let (image, mount) = (world.path("client.img"), world.path("client-disk"));
    crash.image(&image, &mount, 192);
    let data_dir = mount.join("client-11");
    let listen = world.addr(11, 34760);
    // Packages of 8 MiB in pieces of 16 KiB: a sync and a mark per piece.
    let mut published = 0u64;
    let mut publish = |world: &World| {
        published += 1;
        let file = storage.join(format!("pkg-{published}.bin"));
        make_package(&file, 8 << 20, published);
        let origin = TestOrigin::start(
            world.addr(2, 0),
            file.clone(),
            OriginOptions {
                delay: Duration::from_millis(2),
                ..OriginOptions::default()
            },
        );
        let id = world.publish_with(&file, &[origin.url("pkg.bin")], &["--piece-size", "16384"]);
        origins.push(origin);
        id
    };
    let mut content = publish(world);
    let (mut pieces_checked, mut marked_max) = (0u64, 0u64);
    for point in 0..points {
        let mut node = world.client_in(&data_dir, "client-11", listen);
        world.wait_registered(&node);
        let status = node.status();
        let complete = status["contents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == content.as_str() && c["have"] == c["pieces"]);
        if complete {
            content = publish(world);
        }
        // The download of the newest content (started, or resumed by
        // itself), cut at a random moment while pieces are written.
        let fetch = Command::new(common::bin())
            .args([
                "fetch",
                "--quiet",
                "--data-dir",
                &path_arg(&data_dir),
                &content,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(dice.below(600)));
        node.kill();
        let _ = fetch.wait_with_output();
        let marked = pieces_marked_at_a_power_cut(world, crash, &image, point);
        pieces_checked += marked;
        marked_max = marked_max.max(marked);
    }
    eprintln!(
        "client: {points} power cuts, {pieces_checked} marked pieces read back right (up to {marked_max} at one cut), {published} packages"
    );
    assert!(marked_max > 0, "no piece was ever marked before a cut");
    crash.unmount(&mount);
}

/// Cuts the power of the client's disk `image` (a copy as it would be
/// after the cut) and reads every marked piece back; returns how many
/// there were. Every one must match its hash.
fn pieces_marked_at_a_power_cut(
    world: &World,
    crash: &mut Crashable,
    image: &Path,
    point: u64,
) -> u64 {
    let (copy, seen) = (world.path("client-cut.img"), world.path("client-cut"));
    crash.power_cut(image, &copy, &seen);
    let cache = PieceCache::open(&CacheConfig {
        dir: seen.join("client-11/cache"),
        quota_bytes: 1 << 30,
        sled_cache_bytes: 1 << 20,
    })
    .unwrap_or_else(|e| panic!("power cut {point}: the cache does not open: {e}"));
    let found = self_check::check_all(&cache).unwrap();
    assert!(
        found.corrupt.is_empty() && found.unreadable.is_empty(),
        "power cut {point}: marked pieces failed their hash: {found:?}"
    );
    drop(cache);
    crash.unmount(&seen);
    std::fs::remove_file(&copy).unwrap();
    found.pieces
}

fn server_power_cuts(world: &World, crash: &mut Crashable, dice: &mut Dice, points: u64) {
    let (image, mount) = (world.path("server.img"), world.path("server-disk"));
    crash.image(&image, &mount, 128);
    let data_dir = mount.join("server");
    let files = world.path("published");
    std::fs::create_dir_all(&files).unwrap();
    let mut acknowledged: Vec<String> = Vec::new();
    let mut n = 0u64;
    for point in 0..points {
        let mut server = world.server_in(&data_dir);
        // Publishes, each acknowledged durably, until the cut.
        let until = Instant::now() + Duration::from_millis(100 + dice.below(500));
        while Instant::now() < until {
            n += 1;
            let file = files.join(format!("{n}.bin"));
            std::fs::write(&file, n.to_le_bytes().repeat(2048)).unwrap();
            let out = run(&[
                "publish".into(),
                "--data-dir".into(),
                path_arg(&data_dir),
                path_arg(&file),
                "--origin".into(),
                format!("https://198.18.0.1/{n}.bin"),
            ]);
            if out.status.success() {
                let id = String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .last()
                    .unwrap()
                    .trim()
                    .to_owned();
                acknowledged.push(id);
            }
        }
        server.kill();
        let (copy, seen) = (world.path("server-cut.img"), world.path("server-cut"));
        crash.power_cut(&image, &copy, &seen);
        let meta = MetaStore::open(&seen.join("server/meta"), 1 << 20)
            .unwrap_or_else(|e| panic!("power cut {point}: the metadata does not open: {e}"));
        let held: std::collections::HashSet<String> = meta
            .contents()
            .unwrap()
            .iter()
            .map(|c| c.manifest.content_id().to_string())
            .collect();
        for id in &acknowledged {
            assert!(
                held.contains(id),
                "power cut {point}: acknowledged publish {id} was lost"
            );
        }
        drop(meta);
        crash.unmount(&seen);
        std::fs::remove_file(&copy).unwrap();
    }
    eprintln!(
        "server: {points} power cuts, {} acknowledged publishes, every one there after every cut",
        acknowledged.len()
    );
    assert!(!acknowledged.is_empty());
    crash.unmount(&mount);
}
