//! Every admin message as a whole frame, at the real caps: requests at the
//! request cap, replies at the reply cap.
#![no_main]
use branchline_actors::wire::{AdminRequest, AdminReply, MAX_REPLY_FRAME, MAX_REQUEST_FRAME, decode_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode_frame::<AdminRequest>(data, MAX_REQUEST_FRAME);
    let _ = decode_frame::<AdminReply>(data, MAX_REPLY_FRAME);
});
