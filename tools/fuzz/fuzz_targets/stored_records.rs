//! What is kept on disk and read back: every record type in sled (its
//! version byte, then postcard), manifests, and discovery datagrams. The
//! first byte chooses the decoder.
#![no_main]
use branchline_actors::client::discovery::Datagram;
use branchline_storage::publication::SignedPublication;
use branchline_storage::records::decode;
use branchline_storage::self_check::SelfCheck;
use branchline_storage::{ClientRecord, ContentId, ContentRecord, Manifest, PieceMap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let what = || "fuzz".to_owned();
    match which % 9 {
        0 => drop(decode::<ContentRecord>(bytes, what)),
        1 => drop(decode::<ClientRecord>(bytes, what)),
        2 => drop(decode::<PieceMap>(bytes, what)),
        3 => drop(decode::<SignedPublication>(bytes, what)),
        4 => drop(decode::<Vec<(ContentId, u64)>>(bytes, what)),
        5 => drop(decode::<SelfCheck>(bytes, what)),
        6 => drop(decode::<u64>(bytes, what)),
        7 => drop(Manifest::from_bytes(bytes)),
        _ => drop(Datagram::decode(bytes)),
    }
});
