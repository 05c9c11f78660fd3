//! Tests of `directory`.

use super::*;
use crate::server::registry::RegistryTiming;
use branchline_storage::{ContentRecord, Manifest};

fn deps() -> OfficeDeps {
    OfficeDeps {
        timing: RegistryTiming {
            client_timeout: Duration::from_secs(20),
            lease_ttl: Duration::from_secs(60),
            rvp_patience: Duration::from_secs(30),
        },
        seats: Arc::default(),
        heartbeat: Duration::from_secs(5),
        book: ActorBook::default(),
        arbiters: Vec::new(),
    }
}

/// A store written by the previous version: purges kept as a list with
/// wall-clock times under the `purges` setting.
#[test]
fn purges_of_the_previous_format_become_numbered_purges() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MetaStore::open(dir.path(), 1 << 20).unwrap());
    let record = |seed: u8| ContentRecord {
        manifest: Manifest::from_reader("p", &[seed; 20_000][..], 16 * 1024, |_| {}).unwrap(),
        origins: vec![],
        published_ms: 1,
    };
    let (gone, back) = (record(1), record(2));
    let (gone_id, back_id) = (gone.manifest.content_id(), back.manifest.content_id());
    // `back` was purged, then published again: it stays.
    store.put_content(&back, false).unwrap();
    let old: Vec<(ContentId, u64)> = vec![(back_id, 20), (gone_id, 10)];
    store.put_setting(OLD_PURGES_SETTING, &old).unwrap();
    let signer: PublicationSigner = Arc::new(|_| None);
    let directory = DirectoryActor::new(deps(), store.clone(), signer).unwrap();
    assert_eq!(store.purges_since(0, 10).unwrap(), vec![(1, gone_id)]);
    assert!(
        store
            .setting::<Vec<(ContentId, u64)>>(OLD_PURGES_SETTING)
            .unwrap()
            .is_none()
    );
    assert!(directory.catalogue.get(&back_id).is_some());
}

/// Two topology writes on the blocking pool may finish in either order:
/// the newer topology is the one kept.
#[test]
fn an_older_topology_written_after_a_newer_one_is_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetaStore::open(dir.path(), 1 << 20).unwrap();
    let writes = TopologyWrites::default();
    let old = Topology::default();
    let new = spreadsheet::import(b"office,parent,type,subnets\nhq,,Default,10.0.0.0/8\n").unwrap();
    save_topology(&store, &new, 2, &writes).unwrap();
    save_topology(&store, &old, 1, &writes).unwrap();
    assert_eq!(load_topology(&store).unwrap(), Some(new.clone()));
    save_topology(&store, &old, 3, &writes).unwrap();
    assert_eq!(load_topology(&store).unwrap(), Some(old));
}
