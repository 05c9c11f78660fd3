//! The registries' tests, as plain state-machine tests without sockets:
//! offices wired by hand ([`enterprise`]) as the actors wire them.

mod enterprise;
mod offices;

use super::*;
use branchline_storage::Manifest;
use branchline_storage::content::MIN_PIECE_SIZE;
use branchline_storage::{ContentId, ContentRecord};
use enterprise::Enterprise;

use crate::client::known_sources::KnownSources;
use crate::topology::spreadsheet;
use crate::wire::{HaveUpdate, PeerUpdate, SourcesQuery};

fn timing() -> RegistryTiming {
    RegistryTiming {
        client_timeout: Duration::from_secs(15),
        lease_ttl: Duration::from_secs(30),
        rvp_patience: Duration::from_secs(30),
    }
}

fn content(pieces: usize) -> ContentRecord {
    let data = vec![1u8; pieces * MIN_PIECE_SIZE as usize];
    let manifest = Manifest::from_reader("p", &data[..], MIN_PIECE_SIZE, |_| {}).unwrap();
    ContentRecord {
        manifest,
        origins: vec!["http://o/p".into()],
        published_ms: 0,
    }
}

fn node(n: u8) -> NodeId {
    NodeId([n; 16])
}

fn reg(n: u8) -> Registration {
    Registration {
        id: node(n),
        name: format!("c{n}"),
        addr: ([127, 0, 0, n], 34760).into(),
        background: ([127, 0, 0, n], 34750).into(),
        holdings: vec![],
        attributes: Attributes::default(),
    }
}

fn query(n: u8, content: ContentId, want: u32) -> SourcesQuery {
    SourcesQuery {
        id: node(n),
        content,
        since: 0,
        want_leases: want,
        release: vec![],
        stuck: vec![],
        wait_ms: 0,
    }
}

/// One office on 127.0.0.0/24 where every client is an RVP: the
/// lease mechanics without the source order.
fn setup(pieces: usize, clients: u8) -> (Enterprise, ContentId, Instant) {
    let now = Instant::now();
    let mut r = Enterprise::new(timing());
    r.set_topology(
        spreadsheet::import(b"office,parent,type,subnets,rvp_count\nhq,,Default,127.0.0.0/24,16\n")
            .unwrap(),
        now,
    );
    let id = r.publish(content(pieces), false).unwrap();
    for n in 1..=clients {
        r.register(reg(n), reg(n).addr.ip(), 0, now).unwrap();
    }
    (r, id, now)
}

#[test]
fn given_a_confidential_content_then_nobody_is_a_source_and_its_mark_cannot_change() {
    let now = Instant::now();
    let mut r = Enterprise::new(timing());
    let mut bare = content(2);
    bare.origins.clear();
    let err = r.publish(bare, true).unwrap_err();
    assert!(
        err.to_string().contains("confidential but has no origin"),
        "{err}"
    );
    let id = r.publish(content(2), true).unwrap();
    let err = r.publish(content(2), false).unwrap_err();
    assert!(
        err.to_string()
            .contains("already published confidential; purge it first to publish it shareable"),
        "{err}"
    );
    r.register(reg(1), reg(1).addr.ip(), 0, now).unwrap();
    r.register(reg(2), reg(2).addr.ip(), 0, now).unwrap();
    r.report_have(node(1), id, PieceMap::full(2), now).unwrap();
    let answer = r.sources(&query(2, id, 2), now).unwrap();
    assert!(
        answer.peers.is_empty(),
        "a holder of a confidential content is never offered"
    );
    assert_eq!(r.content_views()[0].complete_holders, 0);
    assert!(r.content_views()[0].confidential);
}

#[test]
fn given_answers_kept_back_in_a_long_poll_then_the_next_delta_applies_to_what_the_asker_knows() {
    let (mut r, id, now) = setup(8, 3);
    let mut known = KnownSources::new(8);
    let first = r.sources(&query(1, id, 0), now).unwrap();
    assert!(known.apply(&first));
    // The asker's own piece moves the version and changes nothing it
    // knows: the server keeps that answer back and waits on.
    let mut own = PieceMap::new(8);
    own.set(0);
    r.report_have(node(1), id, own, now).unwrap();
    let mut asked = query(1, id, 0);
    asked.since = first.version;
    let kept = r.sources(&asked, now).unwrap();
    assert!(kept.changes_nothing());
    let mut gained = PieceMap::new(8);
    gained.set(3);
    r.report_have(node(2), id, gained.clone(), now).unwrap();
    asked.since = kept.version;
    let next = r.sources(&asked, now).unwrap();
    assert_eq!(next.base, kept.version);
    assert!(
        !known.clone().apply(&next),
        "against the kept-back answer it does not fit"
    );
    assert!(known.apply(&next.rebased(kept.version, first.version)));
    let peer = known.peers().next().unwrap();
    assert_eq!((peer.id, &peer.have), (node(2), &gained));
}

#[test]
fn given_two_askers_when_leasing_then_no_piece_is_leased_twice() {
    let (mut r, id, now) = setup(6, 2);
    let a = r.sources(&query(1, id, 4), now).unwrap();
    let b = r.sources(&query(2, id, 4), now).unwrap();
    assert_eq!(a.granted, vec![0, 1, 2, 3]);
    assert_eq!(b.granted, vec![4, 5]);
    assert_eq!(
        b.leased_elsewhere.unwrap().iter_set().collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
}

#[test]
fn given_the_last_answer_seen_then_the_next_is_a_delta_of_gains_and_otherwise_complete() {
    let (mut r, id, now) = setup(8, 3);
    let first = r.sources(&query(1, id, 0), now).unwrap();
    assert_eq!(first.base, 0);
    assert!(first.peers.is_empty());
    let mut have = PieceMap::new(8);
    have.set(2);
    r.report_have(node(2), id, have.clone(), now).unwrap();
    let mut asked = query(1, id, 0);
    asked.since = first.version;
    let second = r.sources(&asked, now).unwrap();
    assert_eq!(second.base, first.version);
    assert_eq!(ids(&second.peers), vec![(2, false)]);
    assert_eq!(
        second.peers[0].have,
        HaveUpdate::Whole(have.clone()),
        "new peer"
    );
    have.set(5);
    have.set(6);
    r.report_have(node(2), id, have.clone(), now).unwrap();
    asked.since = second.version;
    let third = r.sources(&asked, now).unwrap();
    assert_eq!(third.base, second.version);
    assert_eq!(third.peers[0].have, HaveUpdate::Gained(vec![5, 6]));
    assert_eq!(third.leased_elsewhere, None);
    asked.since = third.version;
    assert!(r.sources(&asked, now).unwrap().changes_nothing());
    // Not the last answer sent (one was lost): complete again.
    asked.since = second.version;
    let again = r.sources(&asked, now).unwrap();
    assert_eq!(again.base, 0);
    assert_eq!(again.peers[0].have, HaveUpdate::Whole(have));
    // A peer that leaves is gone in the next delta.
    asked.since = again.version;
    assert!(r.at(&node(2)).leave(node(2), now));
    let after = r.sources(&asked, now).unwrap();
    assert_eq!(after.gone, vec![node(2)]);
}

#[test]
fn a_purge_forgets_the_content_and_office_infos_carry_its_number_once_durable() {
    let (mut r, id, now) = setup(2, 2);
    r.report_have(node(1), id, PieceMap::full(2), now).unwrap();
    assert!(r.purge(&id));
    assert!(!r.purge(&id), "already gone");
    assert!(r.content_views().is_empty());
    assert_eq!(
        r.sources(&query(2, id, 1), now).unwrap_err(),
        RegistryError::UnknownContent(id)
    );
    assert_eq!(
        r.at(&node(2)).office_info(&node(2), now).unwrap().purge_seq,
        0,
        "not durable yet"
    );
    r.purged_up_to(7);
    r.purged_up_to(3);
    let years_later = now + Duration::from_secs(3 * 365 * 86_400);
    assert_eq!(
        r.at(&node(2))
            .office_info(&node(2), years_later)
            .unwrap()
            .purge_seq,
        7
    );
    assert!(
        r.take_dirty().holdings.is_empty(),
        "nothing of it to persist"
    );
}

#[test]
fn given_a_ban_then_the_office_is_not_sent_to_the_peer_and_may_lease_its_pieces() {
    let (mut r, id, now) = setup(2, 3);
    r.report_have(node(1), id, PieceMap::full(2), now).unwrap();
    assert!(r.sources(&query(2, id, 2), now).unwrap().granted.is_empty());
    let evidence = vec![BadPiece {
        content: id,
        piece: 0,
        error: "piece 0 hash mismatch".into(),
    }];
    assert!(r.at(&node(2)).report_ban(node(2), node(1), evidence, now));
    for asker in [2, 3] {
        let answer = r.sources(&query(asker, id, 2), now).unwrap();
        assert!(answer.peers.is_empty(), "asker {asker}: {:?}", answer.peers);
    }
    assert_eq!(
        r.sources(&query(2, id, 2), now).unwrap().granted,
        vec![0, 1]
    );
    let bans = r.office("hq").report(now).bans;
    assert_eq!(
        (bans.len(), bans[0].peer, bans[0].by),
        (1, node(1), node(2))
    );
    assert!(
        !r.office("hq").report_ban(node(9), node(1), Vec::new(), now),
        "unknown reporter"
    );
}

#[test]
fn given_a_held_piece_when_leasing_then_it_is_not_granted_and_the_holder_is_a_source() {
    let (mut r, id, now) = setup(3, 2);
    let mut have = PieceMap::new(3);
    have.set(0);
    r.report_have(node(1), id, have, now).unwrap();
    let b = r.sources(&query(2, id, 5), now).unwrap();
    assert_eq!(b.granted, vec![1, 2]);
    assert_eq!(b.peers.len(), 1);
    assert_eq!(b.peers[0].id, node(1));
}

#[test]
fn given_a_lease_when_reported_released_or_expired_then_it_ends() {
    let (mut r, id, now) = setup(3, 2);
    assert_eq!(
        r.sources(&query(1, id, 3), now).unwrap().granted,
        vec![0, 1, 2]
    );
    let mut have = PieceMap::new(3);
    have.set(0);
    r.report_have(node(1), id, have, now).unwrap();
    let mut q = query(1, id, 0);
    q.release = vec![1];
    assert_eq!(r.sources(&q, now).unwrap().granted, vec![2]);
    // Client 2 gets piece 1 now, and piece 2 once client 1's lease
    // expires (its own expired lease on 1 is granted to it again).
    assert_eq!(r.sources(&query(2, id, 3), now).unwrap().granted, vec![1]);
    let later = now + Duration::from_secs(31);
    r.at(&node(1)).heartbeat(&node(1), later);
    assert_eq!(
        r.sources(&query(2, id, 3), later).unwrap().granted,
        vec![1, 2]
    );
    assert!(
        r.sources(&query(1, id, 3), later)
            .unwrap()
            .granted
            .is_empty()
    );
}

#[test]
fn given_silent_clients_when_expiring_then_they_their_holdings_and_leases_go() {
    let (mut r, id, now) = setup(2, 2);
    r.report_have(node(1), id, PieceMap::full(2), now).unwrap();
    r.sources(&query(2, id, 0), now).unwrap();
    let v = r.office("hq").version(&id).unwrap();
    let later = now + Duration::from_secs(16);
    r.at(&node(2)).heartbeat(&node(2), later);
    assert_eq!(r.expire(later), vec![node(1)]);
    assert!(r.office("hq").version(&id).unwrap() > v);
    let answer = r.sources(&query(2, id, 2), later).unwrap();
    assert!(answer.peers.is_empty());
    assert_eq!(answer.granted, vec![0, 1]);
    assert_eq!(
        r.report_have(node(1), id, PieceMap::full(2), later),
        Err(RegistryError::UnknownClient(node(1)))
    );
    assert_eq!(r.take_dirty().removed, vec![node(1)]);
}

#[test]
fn given_a_client_that_leaves_then_it_is_gone_at_once_and_a_second_leave_is_refused() {
    let (mut r, id, now) = setup(2, 2);
    r.report_have(node(1), id, PieceMap::full(2), now).unwrap();
    assert_eq!(r.sources(&query(2, id, 0), now).unwrap().peers.len(), 1);
    assert!(r.at(&node(1)).leave(node(1), now));
    let answer = r.sources(&query(2, id, 2), now).unwrap();
    assert!(answer.peers.is_empty(), "no heartbeat timeout to wait for");
    assert_eq!(answer.granted, vec![0, 1]);
    assert!(!r.at(&node(1)).leave(node(1), now));
    assert_eq!(r.take_dirty().removed, vec![node(1)]);
}

#[test]
fn given_bad_reports_then_they_are_refused_with_reasons() {
    let (mut r, id, now) = setup(2, 1);
    let err = r
        .report_have(node(1), id, PieceMap::new(5), now)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("have-map of 5 pieces for content {id} of 2 pieces")
    );
    let other = branchline_storage::Hash([9; 32]);
    assert_eq!(
        r.report_have(node(1), other, PieceMap::new(2), now),
        Err(RegistryError::UnknownContent(other))
    );
}

#[test]
fn given_changes_then_versions_move_and_dirty_lists_them_once() {
    let (mut r, id, now) = setup(2, 1);
    // An office knows a content from the first report or question about it.
    let v0 = r.office("hq").version(&id).unwrap_or(0);
    r.report_have(node(1), id, PieceMap::full(2), now).unwrap();
    let v1 = r.office("hq").version(&id).unwrap();
    assert!(v1 > v0);
    r.report_have(node(1), id, PieceMap::full(2), now).unwrap();
    assert_eq!(
        r.office("hq").version(&id).unwrap(),
        v1,
        "same map, no change"
    );
    let dirty = r.take_dirty();
    assert_eq!(dirty.holdings.len(), 1);
    assert_eq!(dirty.clients.len(), 1);
    assert_eq!(r.take_dirty(), Dirty::default());
}

#[test]
fn given_a_restart_when_restored_then_holdings_come_back() {
    let (mut r, id, now) = setup(2, 1);
    r.report_have(node(1), id, PieceMap::full(2), now).unwrap();
    let dirty = r.take_dirty();
    // The office forgets everything, as after a panic, and reloads what
    // was stored.
    let hq = r.office("hq");
    hq.forget_all();
    assert!(hq.book().is_empty());
    hq.restore(dirty.clients, dirty.holdings, now);
    r.register(reg(2), reg(2).addr.ip(), 0, now).unwrap();
    let answer = r.sources(&query(2, id, 2), now).unwrap();
    assert_eq!(answer.peers.len(), 1);
    assert!(answer.granted.is_empty());
    assert_eq!(r.content_views()[0].complete_holders, 1);
}

#[test]
fn given_a_client_that_registered_again_during_a_rebuild_then_the_store_does_not_overwrite_it() {
    let (mut r, id, now) = setup(2, 2);
    r.report_have(node(1), id, PieceMap::full(2), now).unwrap();
    let stored = r.take_dirty();
    r.office("hq").forget_all();
    // Client 1 lost its cache and registers again, holding nothing,
    // before the store has been read back.
    r.register(reg(1), reg(1).addr.ip(), 0, now).unwrap();
    r.office("hq").restore(stored.clients, stored.holdings, now);
    assert_eq!(
        r.office("hq").book().len(),
        2,
        "client 2 came back from the store"
    );
    // Client 1 holds nothing: the origin is leased to it for both pieces.
    let answer = r.sources(&query(1, id, 2), now).unwrap();
    assert!(answer.peers.is_empty());
    assert_eq!(answer.granted, vec![0, 1]);
}

#[test]
fn given_more_holders_than_the_cap_when_asked_then_the_answer_is_capped_and_keeps_the_rare_piece() {
    let clients = u8::try_from(MAX_PEERS_PER_ANSWER + 20).unwrap();
    let (mut r, id, now) = setup(4, clients);
    // Everyone holds piece 0; only the last client holds piece 3.
    for n in 2..=clients {
        let mut have = PieceMap::new(4);
        have.set(0);
        if n == clients {
            have.set(3);
        }
        r.report_have(node(n), id, have, now).unwrap();
    }
    let answer = r.sources(&query(1, id, 0), now).unwrap();
    assert_eq!(answer.peers.len(), MAX_PEERS_PER_ANSWER);
    assert!(answer.peers.iter().all(|p| p.id != node(1)));
    assert!(answer.peers.iter().any(|p| p.id == node(clients)));
    // Pieces 1 and 2 are held by nobody: they can be leased.
    let leased = r.sources(&query(1, id, 4), now).unwrap();
    assert_eq!(leased.granted, vec![1, 2]);
}

#[test]
fn given_holders_of_everything_when_asked_then_the_answer_still_spreads_to_the_cap() {
    let clients = u8::try_from(MAX_PEERS_PER_ANSWER + 5).unwrap();
    let (mut r, id, now) = setup(4, clients);
    for n in 2..=clients {
        r.report_have(node(n), id, PieceMap::full(4), now).unwrap();
    }
    // The first peer covers every piece; the others still come, for load.
    let first = r.sources(&query(1, id, 0), now).unwrap();
    assert_eq!(first.peers.len(), MAX_PEERS_PER_ANSWER);
    // Another asker starts its walk elsewhere.
    let other = r.sources(&query(40, id, 0), now).unwrap();
    assert_eq!(other.peers.len(), MAX_PEERS_PER_ANSWER);
    assert_ne!(first.peers[0].id, other.peers[0].id);
}

#[test]
fn given_a_holder_that_leaves_when_leasing_then_its_pieces_are_free_again() {
    let (mut r, id, now) = setup(2, 2);
    r.report_have(node(2), id, PieceMap::full(2), now).unwrap();
    assert!(r.sources(&query(1, id, 2), now).unwrap().granted.is_empty());
    // Client 1 keeps asking (its heartbeat); client 2 goes silent.
    let later = now + timing().client_timeout / 2;
    r.sources(&query(1, id, 0), later).unwrap();
    assert_eq!(
        r.expire(now + timing().client_timeout + Duration::from_secs(1)),
        vec![node(2)]
    );
    let after = now + timing().client_timeout + Duration::from_secs(1);
    assert_eq!(
        r.sources(&query(1, id, 2), after).unwrap().granted,
        vec![0, 1]
    );
}

#[test]
fn given_the_cap_of_clients_then_a_new_one_is_refused_and_a_known_one_still_registers() {
    let now = Instant::now();
    let mut r = Enterprise::capped(timing(), 2);
    r.register(reg(1), reg(1).addr.ip(), 0, now).unwrap();
    r.register(reg(2), reg(2).addr.ip(), 0, now).unwrap();
    let err = r.register(reg(3), reg(3).addr.ip(), 0, now).unwrap_err();
    assert_eq!(err, RegistryError::Full(2));
    assert!(err.to_string().contains("registry.max_clients"));
    r.register(reg(1), reg(1).addr.ip(), 0, now).unwrap();
}

fn ids(peers: &[PeerUpdate]) -> Vec<(u8, bool)> {
    peers.iter().map(|p| (p.id.0[0], p.upstream)).collect()
}
