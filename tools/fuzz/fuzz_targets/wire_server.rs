//! Every server message as a whole frame, at the real caps: requests at the
//! request cap, replies at the reply cap.
#![no_main]
use branchline_actors::wire::{ServerRequest, ServerReply, MAX_REPLY_FRAME, MAX_REQUEST_FRAME, decode_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode_frame::<ServerRequest>(data, MAX_REQUEST_FRAME);
    let _ = decode_frame::<ServerReply>(data, MAX_REPLY_FRAME);
});
