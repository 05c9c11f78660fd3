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
//!   adds about 177 ms there);
//! - the busy pause holds the RVP's downloads for part of the TCP phase,
//!   with its reason in `status`, and has let go by the end;
//! - two background flows into the office (a second RVP pulling a second
//!   package) each get at least half what the other gets.
//!
//! Needs root, iproute2, iptables, nginx, curl, iperf3 and ping (`tools/run-tests`
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
    let paused = ours["paused_beside_tcp_s"].as_f64().unwrap();
    let timeline = &ours["pause_timeline"];
    assert!(paused > 0.0, "never paused beside TCP: {timeline}");
    assert_eq!(ours["paused_at_end"], false, "still paused: {timeline}");
    let reasons = ours["pause_reasons"].to_string();
    assert!(
        reasons.contains("WAN link busy: queuing delay"),
        "{reasons}"
    );
    let flows: Vec<f64> = ours["two_flows_mbit"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let (low, high) = (flows[0].min(flows[1]), flows[0].max(flows[1]));
    assert!(low >= 0.5 * high, "two flows: {flows:?}");
    assert!(common::testbed::nothing_left(), "namespaces left behind");
}
