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

mod common;

#[test]
fn the_background_protocol_steps_aside_for_a_tcp_flow() {
    let run = common::testbed::run(&["yield", "--only-yielding"]);
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
    assert!(common::testbed::nothing_left(), "namespaces left behind");
}
