//! The registries' tests that span offices: the source order up the
//! tree, RVPs told what their office wants, patience, reports carried to
//! the peer's office, and clients moving office with what they hold.

use super::*;

/// hq (127.0.1.0/24), branch under it (127.0.2.0/24) and a VPN office
/// (127.0.3.0/24); client n registers at `net`.n.
fn offices(pieces: usize) -> (Enterprise, ContentId, Instant) {
    let now = Instant::now();
    let mut r = Enterprise::new(timing());
    r.set_topology(
        spreadsheet::import(
            b"office,parent,type,subnets\nhq,,Default,127.0.1.0/24\n\
              branch,hq,Default,127.0.2.0/24\nvpn,hq,VPN,127.0.3.0/24\n",
        )
        .unwrap(),
        now,
    );
    let id = r.publish(content(pieces), false).unwrap();
    for (n, net, free) in [(1, 1, 90), (2, 1, 10), (3, 2, 90), (4, 2, 10), (5, 3, 90)] {
        let mut reg = reg(n);
        reg.addr = ([127, 0, net, n], 34760).into();
        reg.attributes.free_bytes = free << 30;
        let seen = reg.addr.ip();
        r.register(reg, seen, 0, now).unwrap();
    }
    (r, id, now)
}

#[test]
fn given_a_client_claiming_another_address_then_its_office_follows_the_one_seen() {
    let (mut r, _, now) = offices(2);
    let mut liar = reg(9);
    liar.addr = ([127, 0, 1, 9], 34760).into(); // claims hq
    r.register(liar, [127, 0, 3, 9].into(), 0, now).unwrap(); // comes from the VPN office
    assert_eq!(r.office_of(&node(9)), Some("vpn"));
}

#[test]
fn given_offices_then_sources_follow_the_office_order_and_only_the_top_rvp_leases() {
    let (mut r, id, now) = offices(4);
    // Nobody holds anything: only hq's RVP (client 1) may use the origin.
    assert_eq!(
        r.sources(&query(2, id, 4), now).unwrap().granted,
        Vec::<u32>::new()
    );
    assert_eq!(
        r.sources(&query(3, id, 4), now).unwrap().granted,
        Vec::<u32>::new()
    );
    assert_eq!(
        r.sources(&query(1, id, 2), now).unwrap().granted,
        vec![0, 1]
    );
    r.report_have(node(1), id, PieceMap::full(4), now).unwrap();
    r.report_have(node(5), id, PieceMap::full(4), now).unwrap();
    // hq's other client takes from hq's RVP; the VPN client never serves.
    assert_eq!(
        ids(&r.sources(&query(2, id, 0), now).unwrap().peers),
        vec![(1, false)]
    );
    // branch's RVP (client 3) sees hq upstream; client 4 waits for it.
    assert_eq!(
        ids(&r.sources(&query(3, id, 0), now).unwrap().peers),
        vec![(1, true)]
    );
    assert_eq!(
        ids(&r.sources(&query(4, id, 0), now).unwrap().peers),
        vec![]
    );
    r.report_have(node(3), id, PieceMap::full(4), now).unwrap();
    assert_eq!(
        ids(&r.sources(&query(4, id, 0), now).unwrap().peers),
        vec![(3, false)]
    );
    // The VPN client has no RVP: it fetches from hq itself.
    assert_eq!(
        ids(&r.sources(&query(5, id, 0), now).unwrap().peers),
        vec![(1, true)]
    );
}

#[test]
fn given_a_stalled_office_then_its_clients_stop_waiting_for_the_rvp() {
    let (mut r, id, now) = offices(2);
    r.report_have(node(1), id, PieceMap::full(2), now).unwrap();
    assert_eq!(
        ids(&r.sources(&query(4, id, 0), now).unwrap().peers),
        vec![]
    );
    let later = now + timing().rvp_patience + Duration::from_secs(1);
    for n in 1..=5 {
        r.at(&node(n)).heartbeat(&node(n), later);
    }
    assert_eq!(
        ids(&r.sources(&query(4, id, 0), later).unwrap().peers),
        vec![(1, true)],
        "no progress in branch for longer than the patience"
    );
}

#[test]
fn given_an_office_that_wants_a_content_then_its_rvp_is_told_to_pull_it() {
    let (mut r, id, now) = offices(2);
    let attributes = |free: u64| Attributes {
        free_bytes: free << 30,
        ..Attributes::default()
    };
    assert_eq!(
        r.at(&node(3))
            .heartbeat_with(&node(3), attributes(90), ByteCounters::default(), now)
            .unwrap()
            .wanted,
        vec![]
    );
    r.sources(&query(4, id, 0), now).unwrap();
    let info = r
        .at(&node(3))
        .heartbeat_with(&node(3), attributes(90), ByteCounters::default(), now)
        .unwrap();
    assert_eq!((info.name.as_str(), info.wanted), ("branch", vec![id]));
    assert!(
        r.at(&node(4))
            .heartbeat_with(&node(4), attributes(10), ByteCounters::default(), now)
            .unwrap()
            .wanted
            .is_empty(),
        "not the RVP"
    );
    let hq = r
        .at(&node(1))
        .heartbeat_with(&node(1), attributes(90), ByteCounters::default(), now)
        .unwrap();
    assert_eq!(hq.wanted, vec![id], "the office above pulls it too");
    r.report_have(node(3), id, PieceMap::full(2), now).unwrap();
    assert!(
        r.at(&node(3))
            .heartbeat_with(&node(3), attributes(90), ByteCounters::default(), now)
            .unwrap()
            .wanted
            .is_empty(),
        "held whole"
    );
}

#[test]
fn given_an_office_that_wants_a_content_again_much_later_then_patience_starts_over() {
    let (mut r, id, now) = offices(2);
    r.report_have(node(1), id, PieceMap::full(2), now).unwrap();
    assert_eq!(
        ids(&r.sources(&query(4, id, 0), now).unwrap().peers),
        vec![]
    );
    let much_later = now + WANTED_TTL + timing().rvp_patience + Duration::from_secs(1);
    for n in 1..=5 {
        r.at(&node(n)).heartbeat(&node(n), much_later);
    }
    assert_eq!(
        ids(&r.sources(&query(4, id, 0), much_later).unwrap().peers),
        vec![],
        "wanting again is not a stall: client 4 still waits for its RVP"
    );
}

#[test]
fn given_a_new_topology_then_a_client_moves_office_with_what_it_holds() {
    let (mut r, id, now) = offices(4);
    // Client 3 (in `branch`) holds everything; client 1 is in `hq`.
    r.report_have(node(3), id, PieceMap::full(4), now).unwrap();
    assert_eq!(r.office_of(&node(3)), Some("branch"));
    assert!(
        ids(&r.sources(&query(1, id, 0), now).unwrap().peers)
            .iter()
            .all(|(n, _)| *n != 3),
        "a branch client is no source of hq's"
    );
    // The branch's subnet now belongs to hq: client 3 moves, and its
    // pieces with it, without saying anything again.
    r.set_topology(
        spreadsheet::import(
            b"office,parent,type,subnets\nhq,,Default,127.0.1.0/24;127.0.2.0/24\n\
              vpn,hq,VPN,127.0.3.0/24\n",
        )
        .unwrap(),
        now,
    );
    assert_eq!(r.office_of(&node(3)), Some("hq"));
    let answer = r.sources(&query(1, id, 0), now).unwrap();
    let holder = answer
        .peers
        .iter()
        .find(|p| p.id == node(3))
        .expect("the moved client is a source of its new office");
    assert_eq!(holder.have, HaveUpdate::Whole(PieceMap::full(4)));
    assert!(
        answer.granted.is_empty(),
        "no origin lease for pieces hq holds"
    );
}

#[test]
fn given_a_peer_of_the_office_above_that_gains_pieces_then_the_next_delta_sends_it_whole() {
    let (mut r, id, now) = offices(4);
    let mut have = PieceMap::new(4);
    have.set(0);
    r.report_have(node(1), id, have.clone(), now).unwrap();
    let first = r.sources(&query(3, id, 0), now).unwrap();
    assert_eq!(ids(&first.peers), vec![(1, true)]);
    have.set(1);
    r.report_have(node(1), id, have.clone(), now).unwrap();
    // hq's actor tells branch's that its peers moved.
    r.office("branch").upstream_moved(&id);
    let mut asked = query(3, id, 0);
    asked.since = first.version;
    let next = r.sources(&asked, now).unwrap();
    assert_eq!(next.base, first.version, "a delta");
    assert_eq!(next.peers.len(), 1);
    assert_eq!(next.peers[0].have, HaveUpdate::Whole(have));
    asked.since = next.version;
    assert!(r.sources(&asked, now).unwrap().changes_nothing());
}

#[test]
fn given_two_branches_under_an_empty_office_then_each_office_leases_its_own_pieces() {
    let now = Instant::now();
    let mut r = Enterprise::new(timing());
    r.set_topology(
        spreadsheet::import(
            b"office,parent,type,subnets\nhq,,Default,127.0.1.0/24\n\
              east,hq,Default,127.0.2.0/24\nwest,hq,Default,127.0.3.0/24\n",
        )
        .unwrap(),
        now,
    );
    let id = r.publish(content(2), false).unwrap();
    for (n, net) in [(2, 2), (3, 3)] {
        let mut reg = reg(n);
        reg.addr = ([127, 0, net, n], 34760).into();
        r.register(reg.clone(), reg.addr.ip(), 0, now).unwrap();
    }
    // Each branch's link carries the content once: each RVP takes it from
    // the origin, as nothing above has clients.
    for n in [2, 3] {
        assert_eq!(
            r.sources(&query(n, id, 2), now).unwrap().granted,
            vec![0, 1]
        );
    }
    let origin = r.office("east").report(now).origin;
    assert_eq!(
        (origin[0].reason.as_str(), origin[0].pieces),
        ("nothing above has clients", 2)
    );
}

#[test]
fn given_a_silent_rvp_of_the_office_above_then_a_branch_client_report_reaches_its_office() {
    let (mut r, id, now) = offices(2);
    assert_eq!(
        r.report_unresponsive(node(9), node(1), now),
        Reported::UnknownReporter
    );
    assert_eq!(
        r.report_unresponsive(node(3), node(1), now),
        Reported::NotHere,
        "client 1 is in hq, above branch"
    );
    let info = r.at(&node(2)).office_info(&node(2), now).unwrap();
    assert_eq!(info.rvps, vec![node(2)], "hq elected another RVP");
    r.report_have(node(2), id, PieceMap::full(2), now).unwrap();
    assert_eq!(
        ids(&r.sources(&query(3, id, 0), now).unwrap().peers),
        vec![(2, true)]
    );
}
