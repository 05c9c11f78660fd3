//! A restart for every actor kind, once by panic and once by stop: while a
//! 64 MiB package spreads to 4 clients, the debug shell (`shell -c "kill
//! ..."`) makes every top-level actor of one client, one of its transfers
//! and one of its peer sessions, and the server's registry panic (one test)
//! or stop (the other).
//! Each is restarted in place, its restart count is 1 with the right cause,
//! and the distribution completes with correct bytes on every client.

mod common;

use std::path::Path;
use std::time::Duration;

use common::origin::{OriginOptions, TestOrigin};
use common::{World, finish_fetches, make_package, path_arg, shell, start_fetches, wait_until};
use serde_json::Value;

const SIZE: usize = 64 * 1024 * 1024;

/// The client's top-level actors.
const KILLS: [&str; 8] = [
    "store",
    "transport",
    "background-transport",
    "discovery",
    "server-link",
    "origin",
    "office",
    "rvp",
];

/// GET /metrics over plain HTTP/1.1.
fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

fn actor(data_dir: &Path, name: &str) -> Value {
    let (ok, out) = shell(data_dir, "actors");
    assert!(ok, "{out}");
    let actors: Vec<Value> = serde_json::from_str(&out).unwrap();
    actors.into_iter().find(|a| a["name"] == name).unwrap()
}

#[test]
fn every_actor_kind_panicked_is_restarted_once_and_the_distribution_completes() {
    kill_every_kind(36, "panic");
}

#[test]
fn every_actor_kind_stopped_is_restarted_once_and_the_distribution_completes() {
    kill_every_kind(38, "stop");
}

fn kill_every_kind(subnet: u8, how: &str) {
    let world = World::new(subnet, 1);
    let package = world.path("package.bin");
    let sha = make_package(&package, SIZE, u64::from(subnet));
    let metrics_addr = format!("127.{subnet}.1.11:9464");
    // A slow origin that holds its answers after 16 pieces until the kills
    // are done, so they land while pieces are still moving, however long
    // they take on a loaded machine.
    let options = OriginOptions {
        delay: Duration::from_millis(250),
        hold_after: Some(16),
        ..OriginOptions::default()
    };
    let origin = TestOrigin::start(world.addr(2, 0), package.clone(), options);
    let server = world.server();
    // The victim serves Prometheus metrics.
    let metrics_config = world.path("metrics.toml");
    std::fs::write(
        &metrics_config,
        format!("[metrics]\nenabled = true\nlisten = \"{metrics_addr}\"\n"),
    )
    .unwrap();
    let mut clients = vec![world.client_with(
        11,
        world.server_addr(),
        &["--config", &path_arg(&metrics_config)],
    )];
    clients.extend((12..=14).map(|host| world.client(host)));
    for c in &clients {
        world.wait_registered(c);
    }
    let content = world.publish(&package, &[origin.url("package.bin")]);
    let mut fetches = start_fetches(&world, &clients, &content);

    let victim = &clients[0].data_dir;
    the_shell_refuses_what_it_does_not_know(victim);
    kill_top_level_actors(victim, how);
    for kind in ["transfer", "peer-session"] {
        kill_one_of(victim, kind, how);
    }
    let running = fetches
        .iter_mut()
        .map(|(fetch, _)| fetch.try_wait().unwrap().is_none())
        .filter(|&still| still)
        .count();
    assert!(
        running > 0,
        "the kills landed while the package was still spreading"
    );
    let (ok, out) = shell(&server.data_dir, &format!("kill directory {how}"));
    assert!(ok, "{out}");
    wait_until("the directory restarted", Duration::from_secs(20), || {
        actor(&server.data_dir, "directory")["restarts"] == 1
    });
    origin.release();

    // The log filter changes live; a bad one is refused and changes nothing.
    let (ok, out) = shell(victim, "log debug");
    assert!(ok && out.contains("log filter is now"), "{out}");
    let (ok, out) = shell(victim, "log =[");
    assert!(!ok && out.contains("cannot use that log filter"), "{out}");

    finish_fetches(fetches, &sha);
    mailboxes_and_peers_are_shown(victim, &metrics_addr);
    restarts_and_bytes_are_in_the_metrics(&metrics_addr);
    assert!(
        clients[0].log().contains(" DEBUG "),
        "debug lines appear after `log`"
    );
    for name in KILLS {
        assert_eq!(actor(victim, name)["restarts"], 1, "{name} restarted once");
    }
}

fn the_shell_refuses_what_it_does_not_know(victim: &Path) {
    let (ok, out) = shell(victim, "kill nobody");
    assert!(!ok && out.contains("no actor `nobody`"), "{out}");
    let (ok, out) = shell(victim, "kill store sideways");
    assert!(
        !ok && out.contains("kill ACTOR [stop|panic|panic-blocking|panic-reply|panic-task]"),
        "{out}"
    );
    let (ok, out) = shell(victim, "frobnicate");
    assert!(!ok && out.contains("unknown command `frobnicate`"), "{out}");
}

/// Kills every top-level actor `how`, each restarted once with the cause.
fn kill_top_level_actors(victim: &Path, how: &str) {
    let expected = if how == "panic" {
        "panicked: killed on request"
    } else {
        "stopped"
    };
    for name in KILLS {
        let (ok, out) = shell(victim, &format!("kill {name} {how}"));
        assert!(ok, "kill {name}: {out}");
        wait_until(
            &format!("{name} restarted"),
            Duration::from_secs(20),
            || {
                let a = actor(victim, name);
                a["restarts"] == 1 && a["alive"] == true
            },
        );
        let cause = actor(victim, name)["last_cause"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(cause.starts_with(expected), "{name}: {cause}");
    }
}

/// Kills the first actor of a short-lived `kind` (a transfer, a peer
/// session) once one is listed; it is restarted once.
fn kill_one_of(victim: &Path, kind: &str, how: &str) {
    let mut name = String::new();
    wait_until(
        &format!("a {kind} is listed"),
        Duration::from_secs(20),
        || {
            let (ok, out) = shell(victim, "actors");
            assert!(ok, "{out}");
            let actors: Vec<Value> = serde_json::from_str(&out).unwrap();
            match actors.iter().find(|a| a["kind"] == kind) {
                Some(a) => {
                    name = a["name"].as_str().unwrap().to_owned();
                    true
                }
                None => false,
            }
        },
    );
    let (ok, out) = shell(victim, &format!("kill {name} {how}"));
    assert!(ok, "kill {name}: {out}");
    wait_until(
        &format!("{name} restarted"),
        Duration::from_secs(20),
        || actor(victim, &name)["restarts"] == 1,
    );
}

/// Every actor's mailbox numbers in the shell and the metrics; the peers
/// moved bytes.
fn mailboxes_and_peers_are_shown(victim: &Path, metrics_addr: &str) {
    let scraped = scrape(metrics_addr);
    assert!(
        scraped.contains("branchline_actor_mailbox_capacity{actor=\"store\",kind=\"store\"} 256"),
        "{scraped}"
    );
    let listed: Vec<Value> = serde_json::from_str(&shell(victim, "actors").1).unwrap();
    for a in &listed {
        assert!(
            a["mailbox_capacity"].as_u64().unwrap() > 0
                && a["mailbox_depth"].as_u64().is_some()
                && a["messages_handled"].as_u64().is_some(),
            "mailbox numbers: {a}"
        );
    }
    let store = listed.iter().find(|a| a["name"] == "store").unwrap();
    assert!(
        store["messages_handled"].as_u64().unwrap() >= 64,
        "the store took at least one message per piece: {store}"
    );
    for family in [
        "branchline_actor_mailbox_depth{actor=\"store\",kind=\"store\"} ",
        "branchline_actor_messages_handled_total{actor=\"store\",kind=\"store\"} ",
    ] {
        assert!(scraped.contains(family), "{family} in {scraped}");
    }
    let (ok, out) = shell(victim, "peers");
    assert!(ok, "{out}");
    let peers: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert!(
        peers
            .iter()
            .any(|p| p["received"].as_u64().unwrap() + p["served"].as_u64().unwrap() > 0),
        "peers moved bytes: {out}"
    );
}

/// Each killed actor's restart, and the byte and transfer families, in
/// OpenMetrics text.
fn restarts_and_bytes_are_in_the_metrics(metrics_addr: &str) {
    let metrics = scrape(metrics_addr);
    for name in KILLS {
        let line = format!("branchline_actor_restarts_total{{actor=\"{name}\",");
        let sample = metrics
            .lines()
            .find(|l| l.starts_with(&line))
            .unwrap_or_else(|| panic!("{line} missing"));
        assert!(sample.ends_with(" 1"), "{sample}");
    }
    for expected in [
        "# TYPE branchline_received_bytes counter",
        "branchline_pieces_stored_total ",
        "# TYPE branchline_content_received_bytes counter",
        "branchline_transfers{state=\"done\"} 1",
    ] {
        assert!(metrics.contains(expected), "{expected} in {metrics}");
    }
    assert!(metrics.ends_with("# EOF\n"), "OpenMetrics text: {metrics}");
}
