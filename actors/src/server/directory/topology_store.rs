//! How the directory keeps the topology in the metadata store: numbered
//! writes (the newest kept whatever order they finish in), the link
//! settings beside it, and the import of a sheet (parse, check, store) as
//! one job for the blocking pool.

use branchline_storage::MetaStore;
use branchline_storage::meta_store::MetaError;
use branchline_storage::records;

use crate::topology::{Topology, spreadsheet};

/// The name the topology is stored under.
const TOPOLOGY_SETTING: &str = "topology";
/// The name its offices' link settings are stored under (the stored form
/// of the topology predates them).
const LINKS_SETTING: &str = "topology-links";

/// The number of the newest topology written to the store. Topologies are
/// numbered on the directory's thread, in the order they were made, and
/// written on the blocking pool, where two writes (an import's, and the
/// periodic save of an automatic office) may finish in any order: the
/// newest one is the one kept.
#[derive(Debug, Default)]
pub struct TopologyWrites(std::sync::Mutex<u64>);

/// Stores the topology with its link settings, both or neither, unless a
/// newer topology (a higher `number`) is stored already.
pub fn save_topology(
    store: &MetaStore,
    topology: &Topology,
    number: u64,
    written: &TopologyWrites,
) -> Result<(), MetaError> {
    let mut newest = crate::lock_unpoisoned(&written.0);
    if number < *newest {
        return Ok(());
    }
    store.put_encoded_settings(vec![
        (TOPOLOGY_SETTING, records::encode(topology)),
        (LINKS_SETTING, records::encode(&topology.links())),
    ])?;
    *newest = number;
    Ok(())
}

/// The stored topology with its link settings, if one was stored.
pub fn load_topology(store: &MetaStore) -> Result<Option<Topology>, MetaError> {
    let Some(mut topology) = store.setting::<Topology>(TOPOLOGY_SETTING)? else {
        return Ok(None);
    };
    topology.set_links(store.setting(LINKS_SETTING)?.unwrap_or_default());
    Ok(Some(topology))
}

/// Parses and checks a sheet, then stores the topology it makes: every
/// problem of the sheet, or why storing failed.
pub fn import_and_store(
    store: &MetaStore,
    sheet: &[u8],
    number: u64,
    written: &TopologyWrites,
) -> Result<Topology, Vec<String>> {
    let topology = spreadsheet::import(sheet)
        .map_err(|problems| problems.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    save_topology(store, &topology, number, written)
        .map_err(|e| vec![format!("storing the topology failed: {e}")])?;
    topology.prepare_lookups();
    Ok(topology)
}
