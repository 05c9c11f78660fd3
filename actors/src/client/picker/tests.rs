//! Tests of `picker`.

use super::*;

fn node(n: u8) -> NodeId {
    NodeId([n; 16])
}

fn peer(n: u8, pieces: &[u32], len: u32) -> PeerHolding {
    let mut have = PieceMap::new(len);
    for &p in pieces {
        have.set(p);
    }
    PeerHolding {
        id: node(n),
        addr: SocketAddr::from(([127, 0, 0, n], 1)),
        have,
        upstream: false,
        rank: u32::from(n),
    }
}

fn upstream(n: u8, pieces: &[u32], len: u32) -> PeerHolding {
    PeerHolding {
        upstream: true,
        ..peer(n, pieces, len)
    }
}

fn limits() -> Limits {
    Limits {
        per_peer: 2,
        total: 6,
        origin: 2,
        retry_after: Duration::from_secs(1),
        stuck_after: Duration::from_secs(30),
    }
}

#[test]
fn given_pieces_of_different_rarity_when_picking_then_rarest_go_first() {
    let mut p = Picker::new(PieceMap::new(4), 1, limits());
    // piece 3 is held by one peer, piece 0 by two, 1 and 2 by none.
    p.update_sources(
        &[peer(1, &[0, 3], 4), peer(2, &[0], 4)],
        PieceMap::new(4),
        &[],
    );
    let reqs = p.next_requests(Instant::now());
    assert_eq!(reqs.iter().map(|r| r.index).collect::<Vec<_>>(), vec![3, 0]);
    assert_eq!(
        reqs[0].source,
        Source::Peer(node(1), SocketAddr::from(([127, 0, 0, 1], 1)))
    );
    // piece 0 went to peer 2, which has nothing in flight.
    assert!(matches!(reqs[1].source, Source::Peer(id, _) if id == node(2)));
}

#[test]
fn given_bytes_arrived_when_they_are_stored_then_the_source_takes_more_and_the_piece_stays_reserved()
 {
    let mut p = Picker::new(PieceMap::new(20), 1, limits());
    let all: Vec<u32> = (0..20).collect();
    p.update_sources(&[peer(1, &all, 20)], PieceMap::new(20), &[]);
    let now = Instant::now();
    let first = p.next_requests(now);
    assert_eq!(first.len(), 2, "per_peer");
    assert!(p.next_requests(now).is_empty());
    assert_eq!(p.on_received(first[0].id), Outcome::Applied);
    assert_eq!(p.on_received(first[0].id), Outcome::Stale, "once");
    let more = p.next_requests(now);
    assert_eq!(more.len(), 1, "the slot is free while the piece is stored");
    assert_ne!(
        more[0].index, first[0].index,
        "the stored piece is reserved"
    );
    assert_eq!(p.in_flight(), 3);
    // A written-off peer's delivered piece still counts when stored.
    p.update_sources(&[], PieceMap::new(20), &[]);
    assert_eq!(p.in_flight(), 1, "only the storing one is left");
    assert_eq!(p.on_stored(&first[0]), Outcome::Applied);
    assert!(p.have().get(first[0].index));
    assert_eq!(p.in_flight(), 0);
}

#[test]
fn given_the_disk_lags_when_total_pieces_wait_for_it_then_no_more_are_asked() {
    let mut p = Picker::new(PieceMap::new(40), 1, limits());
    let all: Vec<u32> = (0..40).collect();
    let peers: Vec<_> = (1..=4).map(|n| peer(n, &all, 40)).collect();
    p.update_sources(&peers, PieceMap::new(40), &[]);
    let now = Instant::now();
    let mut storing = 0;
    while storing < limits().total {
        let reqs = p.next_requests(now);
        assert!(!reqs.is_empty());
        for r in reqs {
            p.on_received(r.id);
            storing += 1;
        }
    }
    assert!(
        p.next_requests(now).is_empty(),
        "total pieces wait for the disk"
    );
}

#[test]
fn given_per_peer_and_total_limits_when_picking_then_they_hold() {
    let mut p = Picker::new(PieceMap::new(20), 1, limits());
    p.update_sources(
        &[peer(1, &(0..20).collect::<Vec<_>>(), 20)],
        PieceMap::new(20),
        &[],
    );
    assert_eq!(p.next_requests(Instant::now()).len(), 2);
    let all: Vec<u32> = (0..20).collect();
    p.update_sources(
        &[
            peer(1, &all, 20),
            peer(2, &all, 20),
            peer(3, &all, 20),
            peer(4, &all, 20),
        ],
        PieceMap::new(20),
        &[],
    );
    assert_eq!(
        p.next_requests(Instant::now()).len(),
        4,
        "6 total, 2 already in flight"
    );
    assert!(p.next_requests(Instant::now()).is_empty());
}

#[test]
fn given_no_holder_when_asking_then_leases_are_wanted_and_used_for_the_origin() {
    let mut p = Picker::new(PieceMap::new(5), 2, limits());
    let mut elsewhere = PieceMap::new(5);
    elsewhere.set(0);
    p.update_sources(&[peer(1, &[1], 5)], elsewhere.clone(), &[]);
    // 2, 3, 4: nobody holds or leases them; 2 origin slots.
    assert_eq!(p.wanted_leases(Instant::now()), 2);
    p.update_sources(&[peer(1, &[1], 5)], elsewhere, &[2, 3]);
    assert_eq!(p.wanted_leases(Instant::now()), 0);
    let reqs = p.next_requests(Instant::now());
    let origin: Vec<_> = reqs
        .iter()
        .filter(|r| r.source == Source::Origin(0))
        .map(|r| r.index)
        .collect();
    assert_eq!(origin, vec![2, 3]);
    assert!(
        reqs.iter()
            .any(|r| r.index == 1 && matches!(r.source, Source::Peer(..)))
    );
}

#[test]
fn given_bad_bytes_from_a_peer_then_it_rests_and_once_banned_it_is_set_aside_for_good() {
    let now = Instant::now();
    let mut p = Picker::new(PieceMap::new(2), 1, limits());
    p.update_sources(&[peer(1, &[0, 1], 2)], PieceMap::new(2), &[]);
    let reqs = p.next_requests(now);
    let bad = reqs[0].index;
    assert_eq!(
        p.on_failed(reqs[0].id, Failure::BadData, now),
        Outcome::Applied
    );
    assert!(p.next_requests(now).is_empty(), "it rests");
    let later = now + Duration::from_secs(60);
    let after = p.next_requests(later);
    assert!(
        after.iter().all(|r| r.index != bad),
        "not asked for the bad piece again: {after:?}"
    );
    p.set_aside(node(1));
    p.update_sources(&[peer(1, &[0, 1], 2)], PieceMap::new(2), &[]);
    let again = p.next_requests(now + Duration::from_secs(60));
    assert!(again.is_empty(), "peer 1 is set aside: {again:?}");
    assert_eq!(
        p.wanted_leases(now),
        2,
        "no piece has a source: the other request to the bad peer was written off too"
    );
}

#[test]
fn given_bad_bytes_from_the_first_origin_when_failed_then_the_next_origin_is_used() {
    let now = Instant::now();
    let mut p = Picker::new(PieceMap::new(1), 2, limits());
    p.update_sources(&[], PieceMap::new(1), &[0]);
    let first = p.next_requests(now);
    assert_eq!(first[0].source, Source::Origin(0));
    p.on_failed(first[0].id, Failure::BadData, now);
    let second = p.next_requests(now);
    assert_eq!(second[0].source, Source::Origin(1));
    p.on_failed(second[0].id, Failure::BadData, now);
    assert!(p.origins_exhausted());
    assert_eq!(p.take_releases(), vec![0]);
    assert_eq!(p.unobtainable(), vec![0]);
}

#[test]
fn with_the_server_out_of_reach_unheld_pieces_go_to_the_origin() {
    let now = Instant::now();
    let mut p = Picker::new(PieceMap::new(3), 1, limits());
    p.update_sources(&[peer(1, &[0], 3)], PieceMap::new(3), &[]);
    p.grant_unheld();
    let reqs = p.next_requests(now);
    let origin: Vec<u32> = reqs
        .iter()
        .filter(|r| r.source == Source::Origin(0))
        .map(|r| r.index)
        .collect();
    assert_eq!(origin, vec![1, 2], "piece 0 stays with the peer");
    let mut none = Picker::new(PieceMap::new(2), 0, limits());
    none.update_sources(&[], PieceMap::new(2), &[]);
    none.grant_unheld();
    assert!(none.next_requests(now).is_empty(), "no origin known");
    assert!(none.unobtainable().is_empty(), "it waits for peers instead");
}

#[test]
fn given_an_unavailable_peer_when_failed_then_it_rests_and_comes_back() {
    let now = Instant::now();
    let mut p = Picker::new(PieceMap::new(1), 1, limits());
    p.update_sources(&[peer(1, &[0], 1)], PieceMap::new(1), &[]);
    let r = p.next_requests(now);
    p.on_failed(r[0].id, Failure::Unavailable, now);
    assert!(p.next_requests(now).is_empty());
    assert_eq!(p.next_wake(now), Some(now + Duration::from_secs(1)));
    assert_eq!(p.next_requests(now + Duration::from_secs(2)).len(), 1);
}

#[test]
fn given_failures_in_a_row_then_rests_double_and_a_success_resets_them() {
    let t0 = Instant::now();
    let mut p = Picker::new(PieceMap::new(3), 1, limits());
    p.update_sources(&[peer(1, &[0, 1, 2], 3)], PieceMap::new(3), &[]);
    let r = p.next_requests(t0);
    p.on_failed(r[0].id, Failure::Unavailable, t0);
    p.on_failed(r[1].id, Failure::Unavailable, t0);
    assert_eq!(
        p.next_wake(t0),
        Some(t0 + Duration::from_secs(2)),
        "second failure: 2 x 1 s"
    );
    let t1 = t0 + Duration::from_secs(3);
    let r = p.next_requests(t1);
    p.on_stored(&r[0]);
    p.on_failed(r[1].id, Failure::Unavailable, t1);
    assert_eq!(
        p.next_wake(t1),
        Some(t1 + Duration::from_secs(1)),
        "the success reset the run"
    );
}

#[test]
fn given_an_origin_that_keeps_failing_then_it_is_given_up_and_the_piece_unobtainable() {
    let mut now = Instant::now();
    let mut p = Picker::new(PieceMap::new(1), 1, limits());
    p.update_sources(&[], PieceMap::new(1), &[0]);
    for _ in 0..ORIGIN_GIVE_UP {
        let r = p.next_requests(now);
        assert_eq!(r.len(), 1);
        p.on_failed(r[0].id, Failure::Unavailable, now);
        now += MAX_REST;
    }
    assert!(p.origins_exhausted());
    assert_eq!(p.unobtainable(), vec![0]);
    assert_eq!(p.take_releases(), vec![0]);
}

#[test]
fn given_a_written_off_request_when_its_outcome_arrives_then_it_is_stale() {
    let now = Instant::now();
    let mut p = Picker::new(PieceMap::new(1), 1, limits());
    p.update_sources(&[peer(1, &[0], 1)], PieceMap::new(1), &[]);
    let r = p.next_requests(now);
    assert_eq!(p.on_stored(&r[0]), Outcome::Applied);
    assert_eq!(p.on_stored(&r[0]), Outcome::Stale);
    assert!(p.is_complete());
    assert!(p.next_requests(now).is_empty());
}

#[test]
fn given_a_peer_vanishes_with_requests_in_flight_then_they_are_written_off_and_asked_elsewhere() {
    let now = Instant::now();
    let mut p = Picker::new(PieceMap::new(3), 1, limits());
    p.update_sources(&[peer(1, &[0, 1, 2], 3)], PieceMap::new(3), &[]);
    let r = p.next_requests(now);
    assert_eq!(r.len(), 2);
    // Peer 1 is gone (the server dropped it); peer 2 holds everything.
    p.update_sources(&[peer(2, &[0, 1, 2], 3)], PieceMap::new(3), &[]);
    assert_eq!(p.source_count(), 1);
    let again = p.next_requests(now);
    assert_eq!(
        again.len(),
        2,
        "per_peer 2: pieces of the dead peer go to peer 2 now"
    );
    assert!(
        again
            .iter()
            .all(|q| matches!(q.source, Source::Peer(id, _) if id == node(2)))
    );
    assert_eq!(
        p.on_stored(&r[0]),
        Outcome::Stale,
        "a late answer changes no bookkeeping"
    );
    assert!(
        p.have().get(r[0].index),
        "but its stored piece counts as held"
    );
}

#[test]
fn given_office_and_upstream_holders_then_the_wan_carries_only_what_the_office_lacks() {
    let now = Instant::now();
    let mut p = Picker::new(PieceMap::new(3), 1, limits());
    // Office peer 1 holds pieces 0 and 1; upstream peer 9 holds all.
    p.update_sources(
        &[peer(1, &[0, 1], 3), upstream(9, &[0, 1, 2], 3)],
        PieceMap::new(3),
        &[],
    );
    let requests = p.next_requests(now);
    let sent: Vec<(u32, Source)> = requests.iter().map(|r| (r.index, r.source)).collect();
    let from = |n: u8| Source::Peer(node(n), SocketAddr::from(([127, 0, 0, n], 1)));
    assert_eq!(sent.len(), 3);
    assert!(sent.contains(&(0, from(1))) && sent.contains(&(1, from(1))));
    assert!(
        sent.contains(&(2, from(9))),
        "only the piece the office lacks crosses the WAN"
    );
    assert!(
        requests.iter().all(|r| r.upstream == (r.index == 2)),
        "the request across the WAN is marked upstream"
    );
}

#[test]
fn given_a_busy_office_peer_then_the_piece_waits_for_it_instead_of_crossing_the_wan() {
    let now = Instant::now();
    let mut p = Picker::new(PieceMap::new(3), 1, limits());
    p.update_sources(
        &[peer(1, &[0, 1, 2], 3), upstream(9, &[0, 1, 2], 3)],
        PieceMap::new(3),
        &[],
    );
    let first = p.next_requests(now);
    assert_eq!(first.len(), 2, "per_peer is 2; the third piece waits");
    assert!(
        first
            .iter()
            .all(|r| matches!(r.source, Source::Peer(id, _) if id == node(1)))
    );
    assert!(p.next_requests(now).is_empty());
}

#[test]
fn given_a_capped_link_then_upstream_requests_are_paced_and_office_ones_are_not() {
    let now = Instant::now();
    let limits = Limits {
        per_peer: 16,
        total: 32,
        ..limits()
    };
    let mut p = Picker::new(PieceMap::new(8), 1, limits);
    // 1 Mbit/s is 2 pieces of 62.5 kB per second across the link; the
    // bucket holds 2 pieces.
    let link = UpstreamLink {
        max_rate_mbit: Some(1),
        ..UpstreamLink::default()
    };
    p.set_upstream_link(Some(&link), 62_500);
    p.update_sources(
        &[
            peer(1, &[0, 1, 2], 8),
            upstream(9, &[0, 1, 2, 3, 4, 5, 6, 7], 8),
        ],
        PieceMap::new(8),
        &[],
    );
    let first = p.next_requests(now);
    let upstream_sent = |reqs: &[Request]| {
        reqs.iter()
            .filter(|r| matches!(r.source, Source::Peer(id, _) if id == node(9)))
            .count()
    };
    assert_eq!(
        first.len(),
        5,
        "3 from the office, 2 (a full bucket) across the link"
    );
    assert_eq!(upstream_sent(&first), 2);
    assert_eq!(p.next_wake(now), Some(now + Duration::from_millis(500)));
    assert_eq!(
        upstream_sent(&p.next_requests(now + Duration::from_millis(499))),
        0
    );
    assert_eq!(
        upstream_sent(&p.next_requests(now + Duration::from_millis(500))),
        1
    );
}

#[test]
fn given_a_holder_that_never_delivers_then_its_piece_goes_to_the_origin_after_the_deadline() {
    let t0 = Instant::now();
    let mut p = Picker::new(PieceMap::new(2), 1, limits());
    p.update_sources(&[peer(1, &[0, 1], 2)], PieceMap::new(2), &[]);
    assert_eq!(p.wanted_leases(t0), 0, "a peer claims every piece");
    let mut now = t0;
    // The peer refuses every request, again and again.
    while now < t0 + Duration::from_secs(30) {
        for r in p.next_requests(now) {
            p.on_failed(r.id, Failure::Unavailable, now);
        }
        assert!(p.stuck_pieces(now).is_empty() || now >= t0 + Duration::from_secs(30));
        now = p.next_wake(now).expect("a rest or a deadline to wait for");
    }
    assert_eq!(p.stuck_pieces(now), vec![0, 1], "both failing since t0");
    assert_eq!(p.wanted_leases(now), 2, "stuck pieces may be leased");
    // The server grants them; the origin is used although the peer claims them.
    p.update_sources(&[peer(1, &[0, 1], 2)], PieceMap::new(2), &[0, 1]);
    let reqs = p.next_requests(now);
    let from_origin: Vec<u32> = reqs
        .iter()
        .filter(|r| r.source == Source::Origin(0))
        .map(|r| r.index)
        .collect();
    assert_eq!(from_origin, vec![0, 1]);
    for r in &reqs {
        p.on_stored(r);
    }
    assert!(p.is_complete() && p.stuck_pieces(now).is_empty());
}

#[test]
fn given_a_lease_held_elsewhere_then_waiting_for_it_never_makes_a_piece_stuck() {
    let t0 = Instant::now();
    let mut p = Picker::new(PieceMap::new(1), 1, limits());
    let mut elsewhere = PieceMap::new(1);
    elsewhere.set(0);
    p.update_sources(&[], elsewhere, &[]);
    assert!(p.next_requests(t0).is_empty());
    let later = t0 + Duration::from_secs(600);
    assert!(p.stuck_pieces(later).is_empty());
    assert_eq!(p.wanted_leases(later), 0);
}

#[test]
fn given_no_origins_then_a_piece_nobody_holds_waits_instead_of_failing() {
    let now = Instant::now();
    let mut p = Picker::new(PieceMap::new(2), 0, limits());
    assert!(!p.origins_exhausted());
    assert!(p.unobtainable().is_empty());
    assert_eq!(p.wanted_leases(now), 0, "no origin to use a lease on");
    p.update_sources(&[peer(1, &[1], 2)], PieceMap::new(2), &[]);
    assert_eq!(p.next_requests(now).len(), 1);
}

#[test]
fn given_origins_learned_later_then_leases_are_wanted_and_used() {
    let now = Instant::now();
    let mut p = Picker::new(PieceMap::new(3), 0, limits());
    p.update_sources(&[peer(1, &[0], 3)], PieceMap::new(3), &[]);
    assert_eq!(p.wanted_leases(now), 0);
    assert_eq!(p.usable_origins(), 0);
    p.learn_origins(2);
    assert_eq!(p.usable_origins(), 2);
    assert_eq!(p.wanted_leases(now), 2, "pieces 1 and 2: nobody holds them");
    p.update_sources(&[peer(1, &[0], 3)], PieceMap::new(3), &[1, 2]);
    assert_eq!(p.leases(), (2, 0));
    let origin: Vec<u32> = p
        .next_requests(now)
        .iter()
        .filter(|r| matches!(r.source, Source::Origin(0)))
        .map(|r| r.index)
        .collect();
    assert_eq!(origin, vec![1, 2]);
    p.learn_origins(5);
    assert_eq!(p.usable_origins(), 2, "origins once known stay as they are");
}

#[test]
fn given_equally_busy_holders_then_the_better_ranked_is_asked_first() {
    let now = Instant::now();
    let mut p = Picker::new(PieceMap::new(1), 1, limits());
    let low = PeerHolding {
        rank: 7,
        ..peer(1, &[0], 1)
    };
    let high = PeerHolding {
        rank: 0,
        ..peer(2, &[0], 1)
    };
    p.update_sources(&[low, high], PieceMap::new(1), &[]);
    let sent = p.next_requests(now);
    assert!(matches!(sent[0].source, Source::Peer(id, _) if id == node(2)));
}

#[test]
fn given_a_peer_that_stops_answering_then_it_is_reported_once_but_a_busy_one_is_not() {
    let now = Instant::now();
    let mut p = Picker::new(PieceMap::new(1), 1, limits());
    p.update_sources(&[peer(1, &[0], 1), peer(2, &[0], 1)], PieceMap::new(1), &[]);
    let mut at = now;
    for _ in 0..(UNRESPONSIVE_AFTER * 2) {
        at += MAX_REST;
        for r in p.next_requests(at) {
            let failure = match r.source {
                Source::Peer(id, _) if id == node(1) => Failure::NoAnswer,
                _ => Failure::Unavailable,
            };
            p.on_failed(r.id, failure, at);
        }
    }
    assert_eq!(p.take_unresponsive(), vec![node(1)], "peer 2 is only busy");
    assert!(p.take_unresponsive().is_empty(), "reported once");
}

#[test]
fn given_origin_leases_when_the_transfer_ends_unfinished_then_every_lease_is_given_back_once() {
    let now = Instant::now();
    let mut p = Picker::new(PieceMap::new(4), 1, limits());
    p.update_sources(&[], PieceMap::new(4), &[0, 2, 3]);
    assert_eq!(p.take_every_lease(), vec![0, 2, 3]);
    assert!(p.take_every_lease().is_empty(), "given back once");
    assert!(
        p.next_requests(now).is_empty(),
        "no piece is taken from the origin without a lease"
    );
}
