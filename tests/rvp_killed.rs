//! An RVP killed mid-transfer: branch-a's RVP is SIGKILLed while the
//! package comes down from hq; the server notices it is gone, elects the
//! next-ranked client, which pulls the rest across the link, and every
//! remaining client finishes with the right bytes. The link into branch-a
//! is measured on the far side: everything hq's only client served went to
//! branch-a. The extra it carried because of the kill is reported and must
//! stay within 1.25x the package in total. The link's 80 Mbit/s cap holds.

mod common;

use std::time::Duration;

use common::origin::{OriginOptions, TestOrigin};
use common::{Node, World, finish_fetches, make_package, path_arg, start_fetches, wait_until};

const SIZE: usize = 64 * 1024 * 1024;

/// The link into branch-a is capped at 80 Mbit/s (10 MB/s): slower than the
/// office LAN, as a WAN is, so the office shares pieces as they arrive.
const SHEET: &str = "office,parent,type,subnets,wan_rate_mbit\n\
    hq,,Default,127.34.1.0/24,\n\
    branch-a,hq,Default,127.34.2.0/24,80\n";

#[test]
fn a_killed_rvp_is_replaced_and_the_office_finishes() {
    let world = World::new(34, 1);
    let package = world.path("package.bin");
    let sha = make_package(&package, SIZE, 34);
    // A slow origin, so the kill lands mid-transfer.
    let options = OriginOptions {
        delay: Duration::from_millis(40),
        ..OriginOptions::default()
    };
    let origin = TestOrigin::start(world.addr(2, 0), package.clone(), options);
    // Fast heartbeats, so the dead RVP expires within seconds.
    let config = world.path("server.toml");
    std::fs::write(
        &config,
        "[registry]\nheartbeat_secs = 1\nclient_timeout_secs = 3\nrvp_patience_secs = 20\n",
    )
    .unwrap();
    let server = world.server_with(&["--config", &path_arg(&config)]);
    world.import_topology(SHEET);

    let (hq, mut branch) = start_clients(&world);
    let content = world.publish(&package, &[origin.url("package.bin")]);

    let started = std::time::Instant::now();
    let mut fetches = start_fetches(&world, &branch, &content);
    let rvp_has = || {
        branch[0].status()["transfers"]
            .as_array()
            .and_then(|t| t.first().map(|t| t["have"].as_u64().unwrap_or(0)))
            .unwrap_or(0)
    };
    wait_until(
        "branch-a's RVP holds a quarter of the package",
        Duration::from_secs(60),
        || rvp_has() >= 16,
    );
    let mut rvp = branch.remove(0);
    rvp.kill();
    let (killed_fetch, _) = fetches.remove(0);
    let _ = killed_fetch.wait_with_output();

    wait_until(
        "branch-a elects branch-a-1",
        Duration::from_secs(20),
        || {
            server.status()["registry"]["clients"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["name"] == "branch-a-1" && c["rvp"] == true)
        },
    );
    finish_fetches(fetches, &sha);

    the_link_kept_its_cap_and_carried_the_package_once(&hq, &origin, started.elapsed());
}

/// hq's only client, and branch-a's four, the first ranked first.
fn start_clients(world: &World) -> (Node, Vec<Node>) {
    let hq = world.client_elected("hq-0", "127.34.1.11:34760", "free_mib = 500000");
    let mut branch = Vec::new();
    for n in 0..4u8 {
        // branch-a-0 ranks first, branch-a-1 second.
        let free = 400_000 - u64::from(n) * 10_000;
        branch.push(world.client_elected(
            &format!("branch-a-{n}"),
            &format!("127.34.2.{}:34760", 11 + n),
            &format!("free_mib = {free}"),
        ));
    }
    world.wait_registered(&hq);
    for c in &branch {
        world.wait_registered(c);
    }
    (hq, branch)
}

/// Everything hq served went to branch-a, across its 80 Mbit/s link.
fn the_link_kept_its_cap_and_carried_the_package_once(
    hq: &Node,
    origin: &TestOrigin,
    elapsed: Duration,
) {
    let elapsed = elapsed.as_secs_f64();
    let total = SIZE as f64;
    // A piece counts as served when its receiver acknowledged it, a
    // moment after the receiver has it.
    let served = || hq.status()["counters"]["served"].as_u64().unwrap() as f64;
    wait_until(
        "hq counted the last piece as served",
        Duration::from_secs(5),
        || served() >= total,
    );
    let link = served();
    let rate = link / elapsed / 125_000.0;
    eprintln!("the link carried {rate:.1} Mbit/s on average over {elapsed:.1} s (cap 80)");
    assert!(
        rate <= 80.0 * 1.05,
        "the link's cap was not kept: {rate:.1} Mbit/s"
    );
    eprintln!(
        "link into branch-a carried {:.3}x the package (origin served {:.3}x)",
        link / total,
        origin.bytes() as f64 / total
    );
    assert!(link <= 1.25 * total, "the link carried {link} bytes");
    assert!(
        link >= total,
        "the office got the whole package across the link"
    );
}
