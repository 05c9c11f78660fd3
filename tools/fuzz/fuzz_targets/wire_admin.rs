//! Every admin message as a whole frame, at the real cap: the admin socket
//! reads requests at the reply cap too (an import carries a whole sheet).
#![no_main]
use branchline_actors::wire::{AdminRequest, AdminReply, MAX_REPLY_FRAME, decode_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode_frame::<AdminRequest>(data, MAX_REPLY_FRAME);
    let _ = decode_frame::<AdminReply>(data, MAX_REPLY_FRAME);
});
