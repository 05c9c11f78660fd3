//! The testbed's `yield` mode (B5) as a test, with the delay-based
//! controller only: one branch behind a 20 Mbit / 40 ms WAN link with a
//! 200 ms bottleneck queue; the central cache serves the branch's RVP over
//! the background protocol, alone and then beside an iperf3 TCP flow.
//! Asserted loosely, so a loaded CI machine cannot fail it by noise (the
//! figures measured by hand are in BENCHMARKS.md):
//! - beside the TCP flow, the background share of the link is at most 25%,
//!   and the TCP flow keeps at least 70% of its rate alone;
//! - alone, the background transfer takes at least half the link;
//! - the ping alongside sees at most 60 ms of added delay (quinn's CUBIC
//!   adds about 177 ms there).
//!
//! Needs root, iproute2, iptables, nginx, curl, iperf3 and ping (`.ci/run`
//! installs them).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The delay program, built in this profile next to the branchline binary.
fn wan_delay() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "-p", "branchline-tools", "--bin", "wan-delay"]);
    if !cfg!(debug_assertions) {
        build.arg("--release");
    }
    assert!(build.status().unwrap().success(), "building wan-delay");
    Path::new(env!("CARGO_BIN_EXE_branchline")).with_file_name("wan-delay")
}

#[test]
fn the_background_protocol_steps_aside_for_a_tcp_flow() {
    let results = tempfile::tempdir().unwrap();
    let out = Command::new("python3")
        .arg(repo().join("tools/testbed/testbed.py"))
        .args(["yield", "--only-yielding"])
        .arg("--bin")
        .arg(env!("CARGO_BIN_EXE_branchline"))
        .arg("--wan-delay")
        .arg(wan_delay())
        .arg("--results")
        .arg(results.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}{stderr}");
    assert!(out.status.success(), "testbed failed: {stderr}");
    let json = std::fs::read_dir(results.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("a results file");
    let run: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let link = run["params"]["wan_mbit"].as_f64().unwrap();
    let tcp_alone = run["tcp_alone_mbit"].as_f64().unwrap();
    let ours = &run["rows"]["delay-based (yielding)"];
    let share = ours["beside_tcp_udp_mbit"].as_f64().unwrap() / link;
    assert!(share <= 0.25, "background share beside TCP: {share}");
    let kept = ours["tcp_iperf_mbit"].as_f64().unwrap() / tcp_alone;
    assert!(kept >= 0.70, "TCP kept {kept} of its rate");
    let alone = ours["alone_mbit"].as_f64().unwrap() / link;
    assert!(
        alone >= 0.5,
        "alone the background took {alone} of the link"
    );
    let added = ours["ping_alone_ms"].as_f64().unwrap() - run["idle_ping_ms"].as_f64().unwrap();
    assert!(added <= 60.0, "ping added {added} ms");
}
