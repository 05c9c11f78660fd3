//! Streaming `read_frame`: frames one after another on a stream that hands
//! its bytes out in chunks the input chooses, at the control endpoint's cap.
#![no_main]
use branchline_actors::wire::{MAX_REQUEST_FRAME, ServerRequest, read_frame};
use branchline_fuzz::{Chunked, run};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut reader = Chunked::new(data);
    run(async {
        for _ in 0..16 {
            match read_frame::<ServerRequest>(&mut reader, MAX_REQUEST_FRAME).await {
                Ok(Some(_)) => continue,
                _ => break,
            }
        }
    });
});
