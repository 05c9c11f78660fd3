//! The piece cache against real files: reopen, byte flips, bad pieces, poisoned locks, rot, quota, confidential contents.

use super::*;
use crate::content::MIN_PIECE_SIZE;

fn package(len: usize, seed: u8) -> (Vec<u8>, Manifest) {
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    let m = Manifest::from_reader(&format!("p{seed}"), &data[..], MIN_PIECE_SIZE, |_| {}).unwrap();
    (data, m)
}

fn piece<'a>(data: &'a [u8], m: &Manifest, i: u32) -> &'a [u8] {
    let s = m.piece_offset(i) as usize;
    &data[s..s + m.piece_len(i) as usize]
}

fn cache(dir: &Path, quota: u64) -> PieceCache {
    PieceCache::open(&CacheConfig {
        dir: dir.into(),
        quota_bytes: quota,
        sled_cache_bytes: 1 << 20,
    })
    .unwrap()
}

fn fill(c: &PieceCache, data: &[u8], m: &Manifest) {
    let id = m.content_id();
    for i in 0..m.piece_count() {
        c.put_piece(&id, i, piece(data, m, i)).unwrap();
    }
}

#[test]
fn pieces_survive_a_reopen_and_export_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (data, m) = package(100_000, 1);
    let id = m.content_id();
    {
        let c = cache(dir.path(), 1 << 30);
        c.add(&m, false).unwrap();
        let first = c.put_piece(&id, 0, piece(&data, &m, 0)).unwrap();
        assert_eq!(
            first,
            PutOutcome {
                newly_stored: true,
                complete: false,
                have: 1
            }
        );
        let again = c.put_piece(&id, 0, piece(&data, &m, 0)).unwrap();
        assert!(!again.newly_stored);
    }
    let c = cache(dir.path(), 1 << 30);
    assert_eq!(c.have(&id).unwrap().iter_set().collect::<Vec<_>>(), vec![0]);
    assert_eq!(c.read_piece(&id, 0).unwrap(), piece(&data, &m, 0));
    let path = dir.path().join("out.bin");
    let out = File::create(&path).unwrap();
    assert!(matches!(
        c.export_to(&id, &out, &path, None),
        Err(CacheError::Incomplete {
            have: 1,
            total: 7,
            ..
        })
    ));
    assert_eq!(out.metadata().unwrap().len(), 0, "nothing written");
    fill(&c, &data, &m);
    let done = c.export_to(&id, &out, &path, None).unwrap();
    assert_eq!(
        done,
        Exported {
            written: 7,
            dropped: vec![]
        }
    );
    assert_eq!(std::fs::read(&path).unwrap(), data);
}

/// Every sampled single-byte flip of a stored content is caught on the
/// way out: the piece it lands in is dropped and not written, and once
/// that piece is stored again, writing just it makes the output whole.
#[test]
fn every_sampled_byte_flip_is_caught_before_it_reaches_the_output() {
    const FLIPS: usize = 1_200;
    let dir = tempfile::tempdir().unwrap();
    let (data, m) = package(96_000, 5);
    let id = m.content_id();
    let c = cache(dir.path(), 1 << 30);
    c.add(&m, false).unwrap();
    fill(&c, &data, &m);
    let stored = OpenOptions::new()
        .read(true)
        .write(true)
        .open(c.piece_path(&id))
        .unwrap();
    let path = dir.path().join("out.bin");
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for flip in 0..FLIPS {
        let at = next() % data.len() as u64;
        let xor = (next() % 255 + 1) as u8;
        stored.write_all_at(&[data[at as usize] ^ xor], at).unwrap();
        let out = File::create(&path).unwrap();
        let done = c.export_to(&id, &out, &path, None).unwrap();
        let hit = (at / u64::from(m.piece_size)) as u32;
        assert_eq!(done.dropped, vec![hit], "flip {flip} at byte {at}");
        let written = std::fs::read(&path).unwrap();
        let range = m.piece_offset(hit) as usize..(m.piece_offset(hit) + m.piece_len(hit)) as usize;
        assert!(
            written[range.clone()].iter().all(|&b| b == 0),
            "flip {flip}: bytes of the rotted piece reached the output"
        );
        assert_eq!(written[..range.start], data[..range.start], "flip {flip}");
        assert_eq!(written[range.end..], data[range.end..], "flip {flip}");
        assert!(
            !c.have(&id).unwrap().get(hit),
            "the rotted piece is dropped"
        );
        // Fetched again (here: stored again), then written on its own.
        c.put_piece(&id, hit, piece(&data, &m, hit)).unwrap();
        let again = c.export_to(&id, &out, &path, Some(&done.dropped)).unwrap();
        assert_eq!(
            again,
            Exported {
                written: 1,
                dropped: vec![]
            }
        );
        assert!(
            std::fs::read(&path).unwrap() == data,
            "flip {flip}: output not whole"
        );
    }
}

#[test]
fn a_bad_piece_is_refused_and_nothing_is_marked() {
    let dir = tempfile::tempdir().unwrap();
    let (data, m) = package(40_000, 2);
    let id = m.content_id();
    let c = cache(dir.path(), 1 << 30);
    c.add(&m, false).unwrap();
    let mut bad = piece(&data, &m, 1).to_vec();
    bad[5] ^= 0x40;
    let err = c.put_piece(&id, 1, &bad).unwrap_err();
    assert!(
        err.to_string().starts_with("piece 1 hash mismatch"),
        "{err}"
    );
    assert_eq!(c.have(&id).unwrap().count(), 0);
    assert!(matches!(
        c.read_piece(&id, 1),
        Err(CacheError::NotHeld { index: 1, .. })
    ));
}

#[test]
fn a_panic_while_a_lock_is_held_leaves_the_cache_working() {
    let dir = tempfile::tempdir().unwrap();
    let (data, m) = package(40_000, 6);
    let id = m.content_id();
    let c = cache(dir.path(), 1 << 30);
    c.add(&m, false).unwrap();
    // A job panics while it holds each of the cache's locks.
    for poison in 0..2 {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _held = match poison {
                0 => (Some(c.open.lock().unwrap()), None),
                _ => (None, Some(c.admit.lock().unwrap())),
            };
            panic!("a job panicked holding a lock");
        }));
    }
    assert!(c.open.is_poisoned() && c.admit.is_poisoned());
    fill(&c, &data, &m);
    assert_eq!(c.read_piece(&id, 0).unwrap(), piece(&data, &m, 0));
    let (_, m2) = package(20_000, 7);
    c.add(&m2, false).unwrap();
    c.remove(&m2.content_id()).unwrap();
}

#[test]
fn bit_rot_on_disk_is_caught_on_read_and_the_piece_unmarked() {
    let dir = tempfile::tempdir().unwrap();
    let (data, m) = package(40_000, 3);
    let id = m.content_id();
    let c = cache(dir.path(), 1 << 30);
    c.add(&m, false).unwrap();
    fill(&c, &data, &m);
    let file = OpenOptions::new()
        .write(true)
        .open(c.piece_path(&id))
        .unwrap();
    file.write_all_at(b"X", 10).unwrap();
    assert!(matches!(
        c.read_piece(&id, 0),
        Err(CacheError::Corrupt { index: 0, .. })
    ));
    assert!(!c.have(&id).unwrap().get(0));
    assert!(c.have(&id).unwrap().get(1));
}

#[test]
fn quota_evicts_lru_complete_unpinned_and_refuses_what_cannot_fit() {
    let dir = tempfile::tempdir().unwrap();
    let c = cache(dir.path(), 100_000);
    let (d1, m1) = package(40_000, 1);
    let (d2, m2) = package(40_000, 2);
    let (_, m3) = package(40_000, 3);
    c.add(&m1, false).unwrap();
    fill(&c, &d1, &m1);
    std::thread::sleep(std::time::Duration::from_millis(2));
    c.add(&m2, true).unwrap();
    fill(&c, &d2, &m2);
    // m1 is the least recently used, complete and unpinned: it goes.
    c.add(&m3, false).unwrap();
    let ids: Vec<_> = c.contents().unwrap().into_iter().map(|s| s.id).collect();
    assert!(!ids.contains(&m1.content_id()));
    assert!(ids.contains(&m2.content_id()) && ids.contains(&m3.content_id()));
    assert!(!c.piece_path(&m1.content_id()).exists());
    // m2 is pinned, m3 incomplete: a fourth cannot fit.
    let (_, m4) = package(40_000, 4);
    let err = c.add(&m4, false).unwrap_err();
    assert!(
        matches!(
            err,
            CacheError::QuotaExceeded {
                need: 40_000,
                quota: 100_000,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(c.usage().unwrap().reserved_bytes, 80_000);
}

#[test]
fn a_confidential_content_is_stored_and_exported_but_never_shared() {
    use crate::publication::{Publication, SignedPublication};
    let dir = tempfile::tempdir().unwrap();
    let (data, m) = package(100_000, 4);
    let id = m.content_id();
    let c = cache(dir.path(), 1 << 30);
    c.add(&m, false).unwrap();
    fill(&c, &data, &m);
    assert_eq!(c.read_piece_to_share(&id, 0).unwrap(), piece(&data, &m, 0));
    let signed = SignedPublication {
        publication: Publication {
            content: id,
            confidential: true,
        },
        signature: None,
    };
    c.set_publication(&signed).unwrap();
    assert!(
        matches!(
            c.read_piece_to_share(&id, 0),
            Err(CacheError::Confidential(_))
        ),
        "an open content takes its new publication at once"
    );
    drop(c);
    let c = cache(dir.path(), 1 << 30);
    assert_eq!(c.publication(&id).unwrap(), Some(signed));
    let err = c.read_piece_to_share(&id, 0).unwrap_err();
    assert!(matches!(err, CacheError::Confidential(_)), "{err}");
    assert!(err.to_string().contains("never shared"), "{err}");
    assert_eq!(c.read_piece(&id, 0).unwrap(), piece(&data, &m, 0));
    c.remove(&id).unwrap();
    assert_eq!(c.publication(&id).unwrap(), None);
}

#[test]
fn unknown_content_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let c = cache(dir.path(), 1 << 20);
    let (_, m) = package(20_000, 9);
    let err = c.have(&m.content_id()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("content {} is not in the cache", m.content_id())
    );
}
