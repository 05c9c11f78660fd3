//! The four-office run: a package crosses every office link once. Offices
//! on their own loopback /24s, every client a separate process, all
//! fetching a 64 MiB package at once from a counting HTTP origin:
//!
//! - hq (top): the server and 2 clients;
//! - branch-a: 4 clients; a-wifi (WiFi, child of branch-a): 2 clients;
//! - branch-b: 3 clients; vpn (VPN): 1 client.
//!
//! Every copy is right; the origin and every parent→child link carry the
//! package at most 1.02 times (measured by the clients' own per-class
//! counters); the VPN client serves nothing; each office's RVP is the
//! client its attributes rank first. The links' background settings in
//! the topology reach both ends: the offices above serve a-wifi with
//! CUBIC (`bg_yielding` false) and branch-b with a 60 ms target, and the
//! RVPs below pause above their link's target, or never.

mod common;

use std::collections::BTreeMap;

use common::origin::{OriginOptions, TestOrigin};
use common::{Node, World, finish_fetches, make_package, shell, start_fetches};
use serde_json::Value;

const SIZE: usize = 64 * 1024 * 1024;

const SHEET: &str = "office,parent,type,subnets,bg_yielding,bg_target_delay_ms\n\
    hq,,Default,127.33.1.0/24,,\n\
    branch-a,hq,Default,127.33.2.0/24,,\n\
    a-wifi,branch-a,WiFi,127.33.3.0/24,false,\n\
    branch-b,hq,Default,127.33.4.0/24,,60\n\
    vpn,hq,VPN,127.33.5.0/24,,\n";

/// (office, its /24's third octet, clients); the first client of each
/// office has the most free space and should be its RVP.
const OFFICES: [(&str, u8, u8); 5] = [
    ("hq", 1, 2),
    ("branch-a", 2, 4),
    ("a-wifi", 3, 2),
    ("branch-b", 4, 3),
    ("vpn", 5, 1),
];

#[test]
fn a_package_crosses_every_office_link_once() {
    let world = World::new(33, 1);
    let package = world.path("package.bin");
    let sha = make_package(&package, SIZE, 33);
    let origin = TestOrigin::start(world.addr(2, 0), package.clone(), OriginOptions::default());
    let server = world.server();
    world.import_topology(SHEET);

    let mut clients: Vec<(String, Node)> = Vec::new();
    for (office, net, count) in OFFICES {
        for n in 0..count {
            let free_mib = if n == 0 { 900_000 } else { 100_000 };
            let name = format!("{office}-{n}");
            let listen = format!("127.33.{net}.{}:34760", 11 + n);
            let node = world.client_elected(&name, &listen, &format!("free_mib = {free_mib}"));
            clients.push((office.to_owned(), node));
        }
    }
    for (_, client) in &clients {
        world.wait_registered(client);
    }
    let content = world.publish(&package, &[origin.url("package.bin")]);

    let fetches = start_fetches(&world, clients.iter().map(|(_, c)| c), &content);
    finish_fetches(fetches, &sha);

    let total = SIZE as f64;
    let served = origin.bytes() as f64;
    // Senders count a piece once its receiver acknowledged it, a moment
    // after the receiver stored it: the two ends agree within a second.
    let settled = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut tally = Tally::of(&clients);
    while !tally.ends_agree() && std::time::Instant::now() < settled {
        std::thread::sleep(std::time::Duration::from_millis(100));
        tally = Tally::of(&clients);
    }
    let report = format!("origin served {:.3}x\n{}", served / total, tally.report);
    eprintln!("{report}");
    assert!(
        served <= 1.02 * total,
        "origin served {served} bytes\n{report}"
    );
    for (office, bytes) in &tally.link {
        if office != "hq" {
            assert!(
                *bytes as f64 <= 1.02 * total,
                "the link into {office} carried {bytes} bytes\n{report}"
            );
        }
    }
    assert_eq!(
        tally.link["hq"], 0,
        "nothing comes into the top office from above"
    );
    assert_eq!(
        tally.wan_bytes, tally.served_bg,
        "every byte between offices went over the background protocol\n{report}"
    );
    assert_eq!(
        tally.office_bytes, tally.served_fg,
        "every byte inside an office went over the foreground protocol\n{report}"
    );

    the_servers_ledger_agrees(&server, &tally.link);
    assert_link_settings_reached_both_ends(&clients);
    only_hq_used_the_origin_and_each_office_elected_its_first(&server);
}

/// The server's ledger agrees with the clients once they have sent a
/// heartbeat with their final counters.
fn the_servers_ledger_agrees(server: &Node, link: &BTreeMap<String, u64>) {
    common::wait_until(
        "the server's ledger matches the clients",
        std::time::Duration::from_secs(15),
        || {
            let status = server.status();
            status["registry"]["links"]
                .as_array()
                .unwrap()
                .iter()
                .all(|l| {
                    let office = l["office"].as_str().unwrap();
                    link.get(office)
                        .is_none_or(|&bytes| l["from_parent"].as_u64() == Some(bytes))
                })
        },
    );
}

fn only_hq_used_the_origin_and_each_office_elected_its_first(server: &Node) {
    let status = server.status();
    assert_eq!(
        status["registry"]["origin"],
        serde_json::json!([{"office": "hq", "reason": "top office", "pieces": 64}]),
        "only the top office used the origin, once per piece"
    );
    for (office, _, _) in OFFICES.iter().filter(|(o, _, _)| *o != "vpn") {
        let rvps: Vec<&str> = status["registry"]["clients"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["office"] == *office && c["rvp"] == true)
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(rvps, vec![format!("{office}-0")], "RVP of {office}");
    }
}

/// The clients' own counters, added up by office and by protocol.
struct Tally {
    /// Bytes each office's clients took from the office above.
    link: BTreeMap<String, u64>,
    /// Bytes taken from peers in the same office.
    office_bytes: u64,
    /// Bytes taken from the office above.
    wan_bytes: u64,
    /// Bytes served over the foreground protocol.
    served_fg: u64,
    /// Bytes served over the background protocol.
    served_bg: u64,
    /// Every client's counters, a line each, and each link's load.
    report: String,
}

impl Tally {
    /// Reads every client's counters, checking what no office may do: a
    /// VPN client serving, a WiFi client broadcasting.
    fn of(clients: &[(String, Node)]) -> Tally {
        let mut tally = Tally {
            link: BTreeMap::new(),
            office_bytes: 0,
            wan_bytes: 0,
            served_fg: 0,
            served_bg: 0,
            report: String::new(),
        };
        for (office, client) in clients {
            let counters = client.status()["counters"].clone();
            let count = |name: &str| counters[name].as_u64().unwrap();
            *tally.link.entry(office.clone()).or_default() += count("from_parent");
            tally.office_bytes += count("from_peers");
            tally.wan_bytes += count("from_parent");
            tally.served_bg += count("served_background");
            tally.served_fg += count("served") - count("served_background");
            tally
                .report
                .push_str(&format!("  {:<12} {}\n", client.name, counters));
            if office == "vpn" {
                assert_eq!(count("served"), 0, "a VPN client never serves");
            }
            if office == "a-wifi" {
                assert_eq!(
                    count("broadcasts_sent"),
                    0,
                    "a WiFi client never broadcasts"
                );
            }
        }
        for (office, bytes) in &tally.link {
            tally.report.push_str(&format!(
                "link into {office}: {:.3}x\n",
                *bytes as f64 / SIZE as f64
            ));
        }
        tally
    }

    /// Whether what receivers counted by source matches what senders
    /// counted by protocol.
    fn ends_agree(&self) -> bool {
        self.wan_bytes == self.served_bg && self.office_bytes == self.served_fg
    }
}

/// The controllers the offices above serve each office below with, seen
/// in the debug shell's `peers`, and where each RVP below pauses, seen in
/// `status`.
fn assert_link_settings_reached_both_ends(clients: &[(String, Node)]) {
    let mut serving: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (_, client) in clients {
        let (ok, out) = shell(&client.data_dir, "peers");
        assert!(ok, "{out}");
        let peers: Value = serde_json::from_str(&out).unwrap();
        for peer in peers.as_array().unwrap() {
            let (Some(addr), Some(controller)) =
                (peer["addr"].as_str(), peer["serving_controller"].as_str())
            else {
                continue;
            };
            if peer["background"] == true {
                let subnet = addr.rsplit_once('.').unwrap().0.to_owned();
                serving
                    .entry(subnet)
                    .or_default()
                    .push(controller.to_owned());
            }
        }
    }
    let expected = [
        ("127.33.2", "yielding, target 25 ms"),
        ("127.33.3", "CUBIC"),
        ("127.33.4", "yielding, target 60 ms"),
    ];
    for (subnet, controller) in expected {
        let seen = serving.get(subnet).cloned().unwrap_or_default();
        assert!(
            !seen.is_empty() && seen.iter().all(|c| c == controller),
            "serving {subnet}.0/24: expected {controller}, saw {serving:?}"
        );
    }
    let pause_at = |name: &str| {
        let (_, client) = clients.iter().find(|(_, c)| c.name == name).unwrap();
        client.status()["background_link"]["pause_at_ms"].clone()
    };
    assert_eq!(pause_at("branch-a-0"), serde_json::json!(30), "the node's");
    assert_eq!(
        pause_at("branch-b-0"),
        serde_json::json!(65),
        "above the 60 ms target"
    );
    assert_eq!(
        pause_at("a-wifi-0"),
        Value::Null,
        "a CUBIC link never pauses"
    );
}
