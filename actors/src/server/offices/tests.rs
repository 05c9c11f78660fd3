//! Tests of `offices`.

use super::*;
use crate::server::election::{Chassis, OsKind};
use crate::topology::{OfficeKind, spreadsheet};

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

#[test]
fn clients_join_their_office_and_the_best_ranked_are_its_rvps() {
    let mut book = OfficeBook::new(topology());
    let now = Instant::now();
    for (n, free) in [(1, 10), (2, 50), (3, 30)] {
        book.join(id(n), &format!("pc-{n}"), ip(&format!("10.0.2.{n}")));
        book.set_attributes(&id(n), attrs(free));
    }
    assert_eq!(book.office_of(&id(1)), Some("branch"));
    let info = book.info(&id(1), now).unwrap();
    assert_eq!(info.name, "branch");
    assert_eq!(
        info.rvps,
        vec![id(2), id(3)],
        "two RVPs, most free space first"
    );
}

#[test]
fn when_an_rvp_leaves_the_next_question_elects_another() {
    let mut book = OfficeBook::new(topology());
    let now = Instant::now();
    book.join(id(1), "pc-1", ip("10.0.1.1"));
    book.set_attributes(&id(1), attrs(50));
    book.join(id(2), "pc-2", ip("10.0.1.2"));
    book.set_attributes(&id(2), attrs(10));
    assert_eq!(book.rvps("hq", now), vec![id(1)]);
    book.leave(&id(1));
    assert_eq!(book.rvps("hq", now), vec![id(2)], "re-elected at once");
}

#[test]
fn a_newcomer_that_only_ties_does_not_unseat_the_rvp() {
    let mut book = OfficeBook::new(topology());
    let now = Instant::now();
    book.join(id(9), "pc-9", ip("10.0.1.9"));
    book.set_attributes(&id(9), attrs(10));
    assert_eq!(book.rvps("hq", now), vec![id(9)]);
    book.join(id(1), "pc-1", ip("10.0.1.1"));
    book.set_attributes(&id(1), attrs(10));
    assert_eq!(
        book.rvps("hq", now),
        vec![id(9)],
        "a tie keeps the sitting RVP"
    );
    book.join(id(2), "pc-2", ip("10.0.1.2"));
    book.set_attributes(&id(2), attrs(20));
    assert_eq!(book.rvps("hq", now), vec![id(2)], "more free space wins");
}

#[test]
fn the_office_preference_counts_and_vpn_offices_elect_nobody() {
    let mut book = OfficeBook::new(topology());
    let now = Instant::now();
    book.join(id(1), "pc-1", ip("10.0.2.1"));
    book.set_attributes(&id(1), attrs(10));
    book.join(id(2), "pc-pref", ip("10.0.2.2"));
    book.set_attributes(&id(2), attrs(10));
    assert_eq!(book.rvps("branch", now)[0], id(2));
    book.join(id(3), "pc-3", ip("10.0.3.3"));
    book.set_attributes(&id(3), attrs(99));
    let info = book.info(&id(3), now).unwrap();
    assert_eq!((info.kind, info.rvps), (OfficeKind::Vpn, vec![]));
}

#[test]
fn an_unclaimed_address_makes_an_automatic_office_that_is_persisted() {
    let mut book = OfficeBook::new(topology());
    assert!(book.take_dirty().is_none());
    assert_eq!(
        book.join(id(1), "pc-1", ip("192.168.5.5")),
        "auto-192.168.5.0/24"
    );
    let saved = book.take_dirty().expect("the new office is to be saved");
    assert!(saved.office("auto-192.168.5.0/24").unwrap().automatic);
    assert!(book.take_dirty().is_none());
}

fn joined(book: &mut OfficeBook, n: u8, addr: &str, free_gib: u64) {
    book.join(id(n), &format!("pc-{n}"), ip(addr));
    book.set_attributes(&id(n), attrs(free_gib));
}

#[test]
fn only_the_rvp_crosses_the_wan_to_the_nearest_populated_office_above() {
    let mut book = OfficeBook::new(topology());
    let now = Instant::now();
    joined(&mut book, 1, "10.0.1.1", 50); // hq RVP
    joined(&mut book, 2, "10.0.1.2", 10);
    joined(&mut book, 3, "10.0.2.1", 50); // branch RVPs (two)
    joined(&mut book, 4, "10.0.2.2", 40);
    joined(&mut book, 5, "10.0.2.3", 10);
    let plan =
        |book: &mut OfficeBook, n: u8, stalled: bool| book.plan(&id(n), stalled, now).unwrap();
    let top = plan(&mut book, 1, false);
    assert_eq!(
        (top.upstream, top.origin, top.crossing),
        (None, true, Some("rvp"))
    );
    let waits = plan(&mut book, 2, false);
    assert_eq!(
        (waits.upstream, waits.origin, waits.crossing),
        (None, false, None)
    );
    let rvp = plan(&mut book, 4, false);
    assert_eq!((rvp.upstream.as_deref(), rvp.origin), (Some("hq"), false));
    let member = plan(&mut book, 5, false);
    assert_eq!(
        (member.upstream, member.crossing),
        (None, None),
        "waits for the RVPs"
    );
    let stalled = plan(&mut book, 5, true);
    assert_eq!(
        (stalled.upstream.as_deref(), stalled.crossing),
        (Some("hq"), Some("fallback"))
    );
}

#[test]
fn vpn_clients_have_no_rvp_and_fetch_upstream_themselves_and_empty_offices_are_skipped() {
    let mut book = OfficeBook::new(topology());
    let now = Instant::now();
    joined(&mut book, 1, "10.0.1.1", 50);
    joined(&mut book, 6, "10.0.3.1", 90);
    let vpn = book.plan(&id(6), false, now).unwrap();
    assert!(!vpn.office_serves);
    assert_eq!(
        (vpn.upstream.as_deref(), vpn.crossing),
        (Some("hq"), Some("no-rvp"))
    );
    // A branch client with nobody in hq: it is the topmost populated
    // office, so its RVP uses the origin.
    let mut lonely = OfficeBook::new(topology());
    joined(&mut lonely, 3, "10.0.2.1", 50);
    let plan = lonely.plan(&id(3), false, now).unwrap();
    assert_eq!((plan.upstream, plan.origin), (None, true));
    assert_eq!(plan.origin_reason, Some("nothing above has clients"));
}

#[test]
fn an_office_with_its_own_breakout_takes_the_origin_directly() {
    let mut offices = topology().offices().to_vec();
    offices[1].origin_direct = true;
    let mut book = OfficeBook::new(Topology::new(offices).unwrap());
    let now = Instant::now();
    joined(&mut book, 1, "10.0.1.1", 50);
    joined(&mut book, 3, "10.0.2.1", 50);
    let plan = book.plan(&id(3), false, now).unwrap();
    assert_eq!((plan.upstream, plan.origin), (None, true));
    assert_eq!(plan.origin_reason, Some("origin_direct"));
    let top = book.plan(&id(1), false, now).unwrap();
    assert_eq!(top.origin_reason, Some("top office"));
}

#[test]
fn a_new_topology_moves_members_and_keeps_their_attributes() {
    let mut book = OfficeBook::new(topology());
    let now = Instant::now();
    book.join(id(1), "pc-1", ip("10.0.9.1"));
    book.set_attributes(&id(1), attrs(10));
    assert_eq!(book.office_of(&id(1)), Some("auto-10.0.9.0/24"));
    let mut t = topology().offices().to_vec();
    t[1].blocks.push("10.0.9.0/24".parse().unwrap());
    book.set_topology(Topology::new(t).unwrap());
    assert_eq!(book.office_of(&id(1)), Some("branch"));
    assert_eq!(book.rvps("branch", now), vec![id(1)]);
    assert!(book.topology().office("auto-10.0.9.0/24").is_none());
    assert!(
        book.take_dirty().is_none(),
        "the import stored it; no automatic office was made"
    );
}

#[test]
fn an_rvp_two_clients_report_silent_is_replaced_until_the_suspicion_ends() {
    let mut book = OfficeBook::new(topology());
    let now = Instant::now();
    joined(&mut book, 1, "10.0.1.1", 90);
    joined(&mut book, 2, "10.0.1.2", 50);
    joined(&mut book, 3, "10.0.1.3", 10);
    assert_eq!(book.rvps("hq", now), vec![id(1)]);
    assert!(
        !book.report_unresponsive(id(1), id(2), now),
        "one report is not enough"
    );
    assert!(
        !book.report_unresponsive(id(1), id(2), now),
        "nor the same reporter twice"
    );
    assert!(
        !book.report_unresponsive(id(1), id(9), now),
        "nor a stranger"
    );
    assert!(book.report_unresponsive(id(1), id(3), now));
    assert_eq!(book.rvps("hq", now), vec![id(2)], "re-elected at once");
    let later = now + SUSPECT_FOR + Duration::from_secs(1);
    assert!(!book.is_suspect(&id(1), later));
    book.rvps("hq", later + ELECTION_TTL);
    assert_eq!(
        book.rank_of("hq", &id(1)),
        Some(0),
        "back after the suspicion"
    );
}
