//! A signed publication as a peer relays it: decoded, then checked as a
//! client checks it (the server's signature, its certificate the CA's).
#![no_main]
use std::sync::OnceLock;

use branchline_storage::publication::SignedPublication;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static CHECK: OnceLock<branchline_actors::client::office::PublicationCheck> = OnceLock::new();
    let check = CHECK.get_or_init(|| {
        branchline::vouch::checker(Some(branchline_fuzz::identity())).expect("a checker")
    });
    let Ok(signed) = postcard::from_bytes::<SignedPublication>(data) else {
        return;
    };
    assert!(check(&signed).is_err(), "nothing but the server signs a publication");
});
