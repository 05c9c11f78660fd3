//! Every peer message as a whole frame, at the real caps: requests at the
//! request cap, replies at the reply cap.
#![no_main]
use branchline_actors::wire::{PeerRequest, PeerReply, MAX_REPLY_FRAME, MAX_REQUEST_FRAME, decode_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode_frame::<PeerRequest>(data, MAX_REQUEST_FRAME);
    let _ = decode_frame::<PeerReply>(data, MAX_REPLY_FRAME);
});
