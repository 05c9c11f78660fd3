//! Distribution behaviour in simulated time (C2): the server's real
//! directory and office actors and each client's real actors (server link,
//! office, transfers, RVP, store on disk), wired by in-memory links with a
//! rate and a delay, on a paused tokio clock (`branchline::sim`). Each
//! scenario simulates minutes of WAN transfer in a second or two of wall
//! time, and fails if a byte is wrong (every piece is verified before it
//! is stored) or a link carries the package more than once.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use branchline::sim::{Link, SimWorld};
use branchline_actors::server::registry::RegistryTiming;
use common::sim::{MIB, PIECE, election, ip, package, timing};

const SHEET: &str = "office,parent,type,subnets\n\
    hq,,Default,10.1.0.0/24\n\
    branch-a,hq,Default,10.2.0.0/24\n\
    branch-b,hq,Default,10.3.0.0/24\n\
    vpn,hq,VPN,10.4.0.0/24\n";

fn links() -> HashMap<String, Link> {
    HashMap::from([
        ("branch-a".to_owned(), Link::wan(50.0, 40)),
        ("branch-b".to_owned(), Link::wan(20.0, 30)),
        ("vpn".to_owned(), Link::wan(10.0, 25)),
    ])
}

/// (office, subnet, clients): the first client of each office has the
/// most free space, so it is the office's RVP.
const OFFICES: [(&str, &str, u8); 4] = [
    ("hq", "10.1.0", 2),
    ("branch-a", "10.2.0", 4),
    ("branch-b", "10.3.0", 3),
    ("vpn", "10.4.0", 1),
];

#[test]
fn a_package_crosses_every_office_link_once_in_simulated_time() {
    let wall = Instant::now();
    let size = 16 * MIB;
    let (took, origin, per_link) = SimWorld::run(|| async {
        let mut world = SimWorld::new(SHEET, &links(), Link::wan(100.0, 20), timing(), 1)
            .await
            .unwrap();
        for (office, net, count) in OFFICES {
            for n in 0..count {
                let free = if n == 0 { 900 } else { 100 };
                let name = format!("{office}-{n}");
                world
                    .client(&name, ip(&format!("{net}.{}", 10 + n)), election(free))
                    .unwrap();
            }
        }
        world.settle().await;
        let content = world
            .publish("p.bin", package(size, 7), PIECE)
            .await
            .unwrap();
        let fetches: Vec<_> = (0..world.clients().len())
            .map(|i| world.fetch(i, content, Duration::from_secs(600)))
            .collect();
        let took: Vec<Duration> = futures_util::future::join_all(fetches)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let per_link: Vec<(String, u64)> = ["branch-a", "branch-b", "vpn"]
            .iter()
            .map(|o| ((*o).to_owned(), world.net.link_bytes(o)))
            .collect();
        let clients = world.clients();
        // The VPN client serves nobody; branch-a's others share among
        // themselves what their RVP pulls.
        let vpn = clients.iter().find(|c| c.name == "vpn-0").unwrap();
        assert_eq!(
            world.net.served_by(vpn.addr),
            0,
            "a VPN client serves nothing"
        );
        for member in clients
            .iter()
            .filter(|c| c.name.starts_with("branch-a-") && c.name != "branch-a-0")
        {
            let got = member.counters.snapshot();
            assert_eq!(
                got.from_peers + got.from_parent,
                size as u64,
                "{}",
                member.name
            );
            assert!(
                got.from_peers > 0,
                "{} took nothing from its office's peers",
                member.name
            );
        }
        (took, world.net.origin_bytes(), per_link)
    });
    let slowest = took.iter().max().unwrap();
    eprintln!(
        "10 clients, 4 offices, 16 MiB: done in {slowest:?} simulated, {:?} wall; origin {:.3}x; links {per_link:?}",
        wall.elapsed(),
        origin as f64 / size as f64
    );
    assert_eq!(origin, size as u64, "the origin served the package once");
    for (office, bytes) in per_link {
        assert_eq!(bytes, size as u64, "{office}'s link carried it once");
    }
    // branch-b's 20 Mbit/s link sets the pace: 16 MiB take 6.7 s on it.
    assert!(
        *slowest >= Duration::from_secs_f64(6.7),
        "faster than the link: {slowest:?}"
    );
}

#[test]
fn an_rvp_cut_off_mid_transfer_is_replaced_and_its_office_finishes() {
    let wall = Instant::now();
    let size = 16 * MIB;
    let sheet =
        "office,parent,type,subnets\nhq,,Default,10.1.0.0/24\nbranch,hq,Default,10.2.0.0/24\n";
    let links = HashMap::from([("branch".to_owned(), Link::wan(20.0, 40))]);
    let (cut_at, link, finished) = SimWorld::run(|| async {
        let timing = RegistryTiming {
            client_timeout: Duration::from_secs(5),
            ..timing()
        };
        let mut world = SimWorld::new(sheet, &links, Link::wan(100.0, 20), timing, 2)
            .await
            .unwrap();
        world
            .client("hq-0", ip("10.1.0.10"), election(500))
            .unwrap();
        for n in 0..4u8 {
            let free = 900 - u64::from(n) * 100; // branch-0 ranks first
            world
                .client(
                    &format!("branch-{n}"),
                    ip(&format!("10.2.0.{}", 10 + n)),
                    election(free),
                )
                .unwrap();
        }
        world.settle().await;
        let content = world
            .publish("p.bin", package(size, 9), PIECE)
            .await
            .unwrap();
        let rvp = 1;
        let fetches: Vec<_> = (0..world.clients().len())
            .filter(|&i| i != rvp)
            .map(|i| world.fetch(i, content, Duration::from_secs(600)))
            .collect();
        let all = futures_util::future::join_all(fetches);
        let cut = async {
            // The RVP pulls for its office; cut it off a quarter of the way.
            let counters = world.clients()[rvp].counters.clone();
            while counters.snapshot().from_parent < size as u64 / 4 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            world.net.set_down(world.clients()[rvp].addr, true);
            counters.snapshot().from_parent
        };
        let (finished, cut_at) = futures_util::future::join(all, cut).await;
        (cut_at, world.net.link_bytes("branch"), finished)
    });
    for result in finished {
        result.unwrap();
    }
    eprintln!(
        "RVP cut off holding {cut_at} bytes; the branch link carried {:.3}x; {:?} wall",
        link as f64 / size as f64,
        wall.elapsed()
    );
    assert!(link >= size as u64, "every piece crossed the link");
    assert!(
        link <= size as u64 * 5 / 4,
        "the link carried {link} bytes: more than 1.25x the package"
    );
}

#[test]
fn branches_with_nobody_above_each_take_the_package_from_the_origin_once() {
    let size = 8 * MIB;
    let sheet = "office,parent,type,subnets\nhq,,Default,10.1.0.0/24\n\
        east,hq,Default,10.2.0.0/24\nwest,hq,Default,10.3.0.0/24\n";
    let (origin, east, west) = SimWorld::run(|| async {
        let mut world = SimWorld::new(sheet, &links(), Link::wan(100.0, 20), timing(), 3)
            .await
            .unwrap();
        for (net, office) in [("10.2.0", "east"), ("10.3.0", "west")] {
            for n in 0..3u8 {
                let free = if n == 0 { 900 } else { 100 };
                world
                    .client(
                        &format!("{office}-{n}"),
                        ip(&format!("{net}.{}", 10 + n)),
                        election(free),
                    )
                    .unwrap();
            }
        }
        world.settle().await;
        let content = world
            .publish("p.bin", package(size, 3), PIECE)
            .await
            .unwrap();
        let fetches: Vec<_> = (0..6)
            .map(|i| world.fetch(i, content, Duration::from_secs(600)))
            .collect();
        for done in futures_util::future::join_all(fetches).await {
            done.unwrap();
        }
        (
            world.net.origin_bytes(),
            world.net.link_bytes("east"),
            world.net.link_bytes("west"),
        )
    });
    // hq has no clients: each branch's RVP takes the origin, so each
    // branch link (which the origin's bytes cross) carries it once.
    assert_eq!(origin, 2 * size as u64, "once per branch");
    assert_eq!((east, west), (size as u64, size as u64));
}

#[test]
fn a_client_off_the_network_takes_the_cdn_and_never_the_file_storage() {
    use branchline_storage::{Origin, OriginKind};
    let size = 4 * MIB;
    let sheet = "office,parent,type,subnets\nhq,,Default,10.1.0.0/24\n";
    let (cdn, files, home_office) = SimWorld::run(|| async {
        let mut world = SimWorld::new(sheet, &HashMap::new(), Link::wan(100.0, 20), timing(), 4)
            .await
            .unwrap();
        let home = world
            .client("home", ip("203.0.113.7"), election(100))
            .unwrap();
        world
            .client("hq-0", ip("10.1.0.10"), election(900))
            .unwrap();
        world.settle().await;
        // File storage first in the typed order: the server orders the
        // CDN first, and gives a client off the network the CDN only.
        let origins = vec![
            Origin {
                url: "https://files.corp/p.bin".into(),
                kind: OriginKind::FileStorage,
            },
            Origin {
                url: "https://cdn.sim/p.bin".into(),
                kind: OriginKind::Cdn,
            },
        ];
        let content = world
            .publish_at("p.bin", package(size, 4), PIECE, origins)
            .await
            .unwrap();
        world
            .fetch(home, content, Duration::from_secs(600))
            .await
            .unwrap();
        (
            world.net.origin_bytes_at("https://cdn.sim/p.bin"),
            world.net.origin_bytes_at("https://files.corp/p.bin"),
            world.net.link_bytes("offnet-203.0.113.0/24"),
        )
    });
    assert_eq!(
        cdn, size as u64,
        "the home client took every byte from the CDN"
    );
    assert_eq!(files, 0, "and none from the file storage");
    assert_eq!(home_office, size as u64, "through its own office's link");
}

/// An office's election decides who crosses the WAN: in `branch` (two RVPs
/// by its `rvp_count`), five clients with the same free space rank by the
/// reference manual's order (a preferred device first, then desktops over
/// laptops, servers over workstations, longer uptime); only the top two
/// take bytes from the office above, the others take everything from
/// their office, and the link carries the package once.
#[test]
fn an_offices_election_decides_which_clients_cross_the_wan() {
    use branchline::config::{ChassisSetting, ElectionSection, OsSetting};
    let size = 8 * MIB;
    let sheet = "office,parent,type,subnets,rvp_count\n\
        hq,,Default,10.1.0.0/24,1\n\
        branch,hq,Default,10.2.0.0/24,2\n";
    let device = |preferred, chassis, os, uptime_h: u64| ElectionSection {
        preferred,
        reserve_mib: Some(0),
        free_mib: Some(100 * 1024),
        chassis: Some(chassis),
        os: Some(os),
        uptime_secs: Some(uptime_h * 3600),
    };
    use ChassisSetting::{Desktop, Laptop};
    use OsSetting::{Server, Workstation};
    // Listed worst first, so the order of registration decides nothing.
    let branch = [
        ("laptop", device(false, Laptop, Workstation, 10)),
        ("desktop", device(false, Desktop, Workstation, 1)),
        ("desktop-long-up", device(false, Desktop, Workstation, 48)),
        ("server", device(false, Desktop, Server, 1)),
        ("preferred-laptop", device(true, Laptop, Workstation, 1)),
    ];
    let (took_from_above, link) = SimWorld::run(|| async {
        let links = HashMap::from([("branch".to_owned(), Link::wan(20.0, 30))]);
        let mut world = SimWorld::new(sheet, &links, Link::wan(100.0, 20), timing(), 8)
            .await
            .unwrap();
        world
            .client("hq-0", ip("10.1.0.10"), election(900))
            .unwrap();
        for (n, (name, attributes)) in branch.iter().enumerate() {
            let addr = ip(&format!("10.2.0.{}", 10 + n));
            world.client(name, addr, attributes.clone()).unwrap();
        }
        world.settle().await;
        let content = world
            .publish("p.bin", package(size, 8), PIECE)
            .await
            .unwrap();
        world
            .fetch(0, content, Duration::from_secs(600))
            .await
            .unwrap();
        let fetches: Vec<_> = (1..=branch.len())
            .map(|i| world.fetch(i, content, Duration::from_secs(600)))
            .collect();
        for done in futures_util::future::join_all(fetches).await {
            done.unwrap();
        }
        let took: Vec<(String, u64)> = world.clients()[1..]
            .iter()
            .map(|c| (c.name.clone(), c.counters.snapshot().from_parent))
            .collect();
        (took, world.net.link_bytes("branch"))
    });
    let crossed: Vec<&str> = took_from_above
        .iter()
        .filter(|(_, bytes)| *bytes > 0)
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(
        crossed,
        ["server", "preferred-laptop"],
        "only the two RVPs take from the office above: {took_from_above:?}"
    );
    assert_eq!(link, size as u64, "the link carries the package once");
}
