//! The piece stream a peer answers a piece request with: the reply frame,
//! its length checked against what was asked, then exactly that many body
//! bytes. The first four bytes choose the piece size asked for.
#![no_main]
use branchline::transport::peer_session::piece_len;
use branchline_actors::wire::{MAX_REPLY_FRAME, PeerReply, read_frame};
use branchline_fuzz::{Chunked, run};
use libfuzzer_sys::fuzz_target;
use tokio::io::AsyncReadExt;

fuzz_target!(|data: &[u8]| {
    let Some((asked, stream)) = data.split_first_chunk::<4>() else {
        return;
    };
    let expected = u32::from_le_bytes(*asked) % (1 << 20) + 1;
    let mut reader = Chunked::new(stream);
    run(async {
        let Ok(Some(reply)) = read_frame::<PeerReply>(&mut reader, MAX_REPLY_FRAME).await else {
            return;
        };
        let Ok(len) = piece_len(&reply, expected) else {
            return;
        };
        // Sized by what was asked, never by the peer.
        assert_eq!(len, expected as usize);
        let mut body = vec![0u8; len];
        let _ = reader.read_exact(&mut body).await;
    });
});
