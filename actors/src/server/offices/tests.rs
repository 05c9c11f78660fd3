//! Tests of `offices`: one office's members, election and plan.

use super::*;
use crate::server::election::{Chassis, OsKind};
use crate::topology::{OfficeKind, Topology, spreadsheet};

const GIB: u64 = 1 << 30;

fn topology() -> Topology {
    spreadsheet::import(
        b"office,parent,type,subnets,preferred_rvps,rvp_count\n\
          hq,,Default,10.0.1.0/24,,1\n\
          branch,hq,Default,10.0.2.0/24,pc-pref,2\n\
          vpn,hq,VPN,10.0.3.0/24,,1\n",
    )
    .unwrap()
}

/// The book of office `name` of [`topology`].
fn book(name: &str) -> OfficeBook {
    OfficeBook::new(topology().office(name).unwrap().clone(), Vec::new())
}

fn attrs(free_gib: u64) -> Attributes {
    Attributes {
        free_bytes: free_gib * GIB,
        preferred: false,
        chassis: Chassis::Laptop,
        os: OsKind::Workstation,
        uptime_secs: 0,
        usable_free_bytes: GIB,
    }
}

fn id(n: u8) -> NodeId {
    NodeId([n; 16])
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn joined(book: &mut OfficeBook, n: u8, addr: &str, free_gib: u64) {
    book.join(id(n), &format!("pc-{n}"), ip(addr));
    book.set_attributes(&id(n), attrs(free_gib));
}

#[test]
fn clients_join_the_office_and_the_best_ranked_are_its_rvps() {
    let mut book = book("branch");
    let now = Instant::now();
    for (n, free) in [(1, 10), (2, 50), (3, 30)] {
        joined(&mut book, n, &format!("10.0.2.{n}"), free);
    }
    let info = book.info(&id(1), now).unwrap();
    assert_eq!(info.name, "branch");
    assert_eq!(
        info.rvps,
        vec![id(2), id(3)],
        "two RVPs, most free space first"
    );
    assert!(book.info(&id(9), now).is_none(), "not a member");
}

#[test]
fn when_an_rvp_leaves_the_next_question_elects_another() {
    let mut book = book("hq");
    let now = Instant::now();
    joined(&mut book, 1, "10.0.1.1", 50);
    joined(&mut book, 2, "10.0.1.2", 10);
    assert_eq!(book.rvps(now), vec![id(1)]);
    let left = book.leave(&id(1)).unwrap();
    assert_eq!((left.name.as_str(), left.addr), ("pc-1", ip("10.0.1.1")));
    assert_eq!(book.rvps(now), vec![id(2)], "re-elected at once");
}

#[test]
fn a_newcomer_that_only_ties_does_not_unseat_the_rvp() {
    let mut book = book("hq");
    let now = Instant::now();
    joined(&mut book, 9, "10.0.1.9", 10);
    assert_eq!(book.rvps(now), vec![id(9)]);
    joined(&mut book, 1, "10.0.1.1", 10);
    assert_eq!(book.rvps(now), vec![id(9)], "a tie keeps the sitting RVP");
    joined(&mut book, 2, "10.0.1.2", 20);
    assert_eq!(book.rvps(now), vec![id(2)], "more free space wins");
}

#[test]
fn the_office_preference_counts_and_vpn_offices_elect_nobody() {
    let mut branch = book("branch");
    let now = Instant::now();
    joined(&mut branch, 1, "10.0.2.1", 10);
    book_join_named(&mut branch, 2, "pc-pref", "10.0.2.2", 10);
    assert_eq!(branch.rvps(now)[0], id(2));
    let mut vpn = book("vpn");
    joined(&mut vpn, 3, "10.0.3.3", 99);
    let info = vpn.info(&id(3), now).unwrap();
    assert_eq!((info.kind, info.rvps), (OfficeKind::Vpn, vec![]));
    assert!(!vpn.serves_below(), "a VPN office serves nobody below");
}

fn book_join_named(book: &mut OfficeBook, n: u8, name: &str, addr: &str, free_gib: u64) {
    book.join(id(n), name, ip(addr));
    book.set_attributes(&id(n), attrs(free_gib));
}

#[test]
fn only_the_rvp_crosses_the_wan_and_asks_the_offices_above() {
    let mut hq = book("hq");
    let mut branch = book("branch");
    let now = Instant::now();
    joined(&mut hq, 1, "10.0.1.1", 50); // hq RVP
    joined(&mut hq, 2, "10.0.1.2", 10);
    joined(&mut branch, 3, "10.0.2.1", 50); // branch RVPs (two)
    joined(&mut branch, 4, "10.0.2.2", 40);
    joined(&mut branch, 5, "10.0.2.3", 10);
    let top = hq.plan(&id(1), false, now).unwrap();
    assert_eq!(
        (top.asks_above, top.origin, top.crossing, top.origin_reason),
        (false, true, Some("rvp"), Some("top office"))
    );
    let waits = hq.plan(&id(2), false, now).unwrap();
    assert_eq!(
        (waits.asks_above, waits.origin, waits.crossing),
        (false, false, None)
    );
    let mut rvp = branch.plan(&id(4), false, now).unwrap();
    assert!(rvp.asks_above);
    rvp.settle(Some("hq".into()));
    assert_eq!((rvp.upstream.as_deref(), rvp.origin), (Some("hq"), false));
    let member = branch.plan(&id(5), false, now).unwrap();
    assert_eq!(
        (member.asks_above, member.crossing),
        (false, None),
        "waits for the RVPs"
    );
    let stalled = branch.plan(&id(5), true, now).unwrap();
    assert_eq!(
        (stalled.asks_above, stalled.crossing),
        (true, Some("fallback"))
    );
    // Nobody above serves: the RVP takes the origin.
    let mut lonely = branch.plan(&id(3), false, now).unwrap();
    lonely.settle(None);
    assert_eq!((lonely.upstream, lonely.origin), (None, true));
    assert_eq!(lonely.origin_reason, Some("nothing above has clients"));
}

#[test]
fn vpn_clients_have_no_rvp_and_cross_the_wan_themselves() {
    let mut vpn = book("vpn");
    let now = Instant::now();
    joined(&mut vpn, 6, "10.0.3.1", 90);
    let plan = vpn.plan(&id(6), false, now).unwrap();
    assert!(!plan.office_serves);
    assert_eq!((plan.asks_above, plan.crossing), (true, Some("no-rvp")));
}

#[test]
fn an_office_with_its_own_breakout_takes_the_origin_directly() {
    let mut spec = topology().office("branch").unwrap().clone();
    spec.origin_direct = true;
    let mut book = OfficeBook::new(spec, Vec::new());
    let now = Instant::now();
    joined(&mut book, 3, "10.0.2.1", 50);
    let plan = book.plan(&id(3), false, now).unwrap();
    assert_eq!(
        (plan.asks_above, plan.upstream, plan.origin),
        (false, None, true)
    );
    assert_eq!(plan.origin_reason, Some("origin_direct"));
}

#[test]
fn a_new_spec_elects_again_and_keeps_attributes() {
    let mut book = book("branch");
    let now = Instant::now();
    joined(&mut book, 1, "10.0.2.1", 10);
    joined(&mut book, 2, "10.0.2.2", 20);
    assert_eq!(book.rvps(now), vec![id(2), id(1)]);
    let mut spec = book.spec().clone();
    spec.rvp_count = 1;
    book.set_spec(spec, Vec::new());
    assert_eq!(book.rvps(now), vec![id(2)], "one seat now");
    assert_eq!(book.attributes(&id(1)), Some(attrs(10)));
}

#[test]
fn an_rvp_two_clients_report_silent_is_replaced_until_the_suspicion_ends() {
    let mut book = book("hq");
    let now = Instant::now();
    joined(&mut book, 1, "10.0.1.1", 90);
    joined(&mut book, 2, "10.0.1.2", 50);
    joined(&mut book, 3, "10.0.1.3", 10);
    assert_eq!(book.rvps(now), vec![id(1)]);
    assert!(
        !book.report_unresponsive(id(1), id(2), now),
        "one report is not enough"
    );
    assert!(
        !book.report_unresponsive(id(1), id(2), now),
        "nor the same reporter twice"
    );
    assert!(
        !book.report_unresponsive(id(8), id(2), now),
        "nor a report about a stranger"
    );
    // A client of an office below may report an RVP of this one.
    assert!(book.report_unresponsive(id(1), id(9), now));
    assert!(!book.serves(&id(1), now));
    assert_eq!(book.rvps(now), vec![id(2)], "re-elected at once");
    let later = now + SUSPECT_FOR + Duration::from_secs(1);
    assert!(!book.is_suspect(&id(1), later));
    book.rvps(later + ELECTION_TTL);
    assert_eq!(book.rank_of(&id(1)), Some(0), "back after the suspicion");
}

#[test]
fn given_an_office_of_one_client_when_an_office_below_reports_it_then_only_the_only_witness_is_believed()
 {
    let now = Instant::now();
    let mut one_below = book("hq");
    joined(&mut one_below, 1, "10.0.1.1", 90);
    // One office below takes from hq: its client is the only one who
    // could notice, so its word is enough.
    one_below.set_takers_below(1);
    assert!(one_below.report_unresponsive(id(1), id(7), now));
    assert!(!one_below.serves(&id(1), now));

    // Three offices below take from hq: one of them whose own link broke
    // cannot sideline hq's only client for the others; a second can.
    let mut three_below = book("hq");
    joined(&mut three_below, 1, "10.0.1.1", 90);
    three_below.set_takers_below(3);
    assert!(!three_below.report_unresponsive(id(1), id(7), now));
    assert!(
        three_below.serves(&id(1), now),
        "one office's word is not enough"
    );
    assert!(three_below.report_unresponsive(id(1), id(8), now));
    assert!(!three_below.serves(&id(1), now));
}

#[test]
fn given_two_rvps_when_they_take_from_above_then_each_piece_is_in_one_share() {
    let (first, second) = (
        Share::among(&[id(3), id(2)], &id(2)).expect("an RVP"),
        Share::among(&[id(3), id(2)], &id(3)).expect("an RVP"),
    );
    assert_eq!(first, Share { nth: 0, of: 2 }, "node id order, not rank");
    assert_eq!(second, Share { nth: 1, of: 2 });
    assert_eq!(Share::among(&[id(2), id(3)], &id(1)), None, "not an RVP");
    assert_eq!(Share::among(&[id(5)], &id(5)), None, "one RVP takes all");
    let above = PieceMap::full(7);
    let (a, b) = (first.of_map(&above), second.of_map(&above));
    for i in 0..7 {
        assert!(a.get(i) != b.get(i), "piece {i} is in exactly one share");
    }
    assert_eq!(a.count() + b.count(), 7);
}

#[test]
fn given_a_stalled_office_when_its_rvp_asks_then_the_plan_says_so() {
    let mut book = book("branch");
    let now = Instant::now();
    for (n, free) in [(1, 10), (2, 50), (3, 30)] {
        joined(&mut book, n, &format!("10.0.2.{n}"), free);
    }
    let plan = book.plan(&id(2), true, now).unwrap();
    assert_eq!(plan.crossing, Some("rvp"));
    assert!(plan.stalled, "its RVPs then take anything from above");
    assert!(!book.plan(&id(2), false, now).unwrap().stalled);
}
