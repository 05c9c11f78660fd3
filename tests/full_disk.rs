//! A full disk. A client's data directory is a 24 MiB tmpfs, 16 MiB of it
//! taken by a ballast file, and it fetches a 16 MiB package. The fetch
//! fails with an error that says the disk is full and that the piece was
//! not stored; the pieces stored before stay, the client keeps serving
//! them to a peer, and once the ballast is gone the same fetch resumes and
//! ends with the right bytes, taking from the origin only what was not
//! stored yet. The failed fetch gives its origin leases back at once: the
//! server's leases last longer than a test waits for a fetch here, so the
//! peer would never finish if it had to wait them out. Needs root (mount);
//! the tmpfs is unmounted by name.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::origin::{OriginOptions, TestOrigin};
use common::{World, make_package, sha256_file};

const SIZE: usize = 16 * 1024 * 1024;
const MIB: u64 = 1024 * 1024;

/// A tmpfs mounted for the test, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: &Path, mib: u32) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m"),
                "bltest-full-disk",
            ])
            .arg(at)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mounting a tmpfs needs root");
        SmallDisk(at.to_owned())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_named_loses_nothing_keeps_serving_and_resumes() {
    let world = World::new(31, 12);
    let package = world.path("package.bin");
    let sha = make_package(&package, SIZE, 12);
    let origin = TestOrigin::start(world.addr(2, 0), package.clone(), OriginOptions::default());
    let config = world.path("server.toml");
    std::fs::write(&config, "[registry]\nlease_ttl_secs = 3600\n").unwrap();
    let _server = world.server_with(&["--config", &common::path_arg(&config)]);
    let disk = SmallDisk::mount(&world.path("small"), 24);
    let ballast = disk.0.join("ballast");
    std::fs::write(&ballast, vec![0u8; 16 * 1024 * 1024]).unwrap();
    // The client's data directory is on the small disk.
    std::fs::create_dir_all(disk.0.join("client")).unwrap();
    std::os::unix::fs::symlink(disk.0.join("client"), world.path("full")).unwrap();
    let full = world.client_at("full", world.addr(11, 34760), world.server_addr(), &[]);
    world.wait_registered(&full);
    let content = world.publish(&package, &[origin.url("package.bin")]);

    let out = world.path("full.out");
    let first = world
        .start_fetch(&full, &content, &out)
        .wait_with_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(!first.status.success());
    assert!(
        stderr.contains("disk full while writing") && stderr.contains("the piece was not stored"),
        "{stderr}"
    );
    assert!(!out.exists(), "no output file from a failed fetch");
    let status = full.status();
    let stored = status["counters"]["pieces_stored"].as_u64().unwrap();
    assert!((1..16).contains(&stored), "some pieces fitted: {stored}");
    assert_eq!(status["contents"][0]["have"].as_u64(), Some(stored));

    // It keeps serving what it has: a peer on a roomy disk takes those
    // pieces from it.
    let peer = world.client(12);
    world.wait_registered(&peer);
    let peer_out = world.path("peer.out");
    common::finish_fetch(world.start_fetch(&peer, &content, &peer_out));
    assert_eq!(sha256_file(&peer_out), sha);
    let from_full = peer.status()["counters"]["from_peers"].as_u64().unwrap();
    assert!(
        from_full >= stored * MIB,
        "the peer took {from_full} bytes from it"
    );

    // Space freed: the same fetch resumes; what was stored stays stored.
    std::fs::remove_file(&ballast).unwrap();
    let received = |status: &serde_json::Value| {
        ["from_peers", "from_parent", "from_origin"]
            .iter()
            .map(|k| status["counters"][*k].as_u64().unwrap())
            .sum::<u64>()
    };
    let before = received(&full.status());
    let out_dir = world.path("outputs");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join("full.out");
    common::finish_fetch(world.start_fetch(&full, &content, &out));
    assert_eq!(sha256_file(&out), sha);
    let status = full.status();
    assert_eq!(status["counters"]["pieces_rejected"].as_u64(), Some(0));
    assert_eq!(status["contents"][0]["have"].as_u64(), Some(16));
    let taken = received(&status) - before;
    assert_eq!(
        taken,
        (16 - stored) * MIB,
        "only the pieces not stored were fetched after the disk freed"
    );
}
