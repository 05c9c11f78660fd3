//! The wire: length-delimited, versioned frames carrying serde messages
//! (postcard), with a hard size cap checked before anything is allocated.
//!
//! A frame is `[version: u8][length: u32 LE][payload]`. Piece bytes do not go
//! in frames: a `PeerReply::Piece` header is followed by the raw bytes on the
//! same QUIC stream. A peer that sends a frame of another version, over the
//! cap, or that does not decode gets an error and its stream is dropped.
//!
//! The same framing carries three conversations, each with its own messages:
//! peer to peer ([`PeerRequest`]), client to server ([`ServerRequest`]) and a
//! command line tool to its local node over the admin socket
//! ([`AdminRequest`]).

use branchline_storage::content::MAX_MANIFEST_BYTES;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The protocol version every frame starts with.
pub const PROTOCOL_VERSION: u8 = 5;
/// Largest request frame accepted (requests are small).
pub const MAX_REQUEST_FRAME: usize = 64 * 1024;
/// Largest reply frame accepted (a reply may carry a manifest).
pub const MAX_REPLY_FRAME: usize = MAX_MANIFEST_BYTES + 64 * 1024;
/// Bytes of frame header: version and length.
pub const FRAME_HEADER: usize = 5;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The stream failed.
    #[error("stream error: {0}")]
    Io(#[from] std::io::Error),
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame")]
    Truncated,
    /// The frame is of a version we do not speak.
    #[error("frame version {0} is not supported (this node speaks {PROTOCOL_VERSION})")]
    Version(u8),
    /// The frame is over the cap for this conversation.
    #[error("frame of {len} bytes is over the {max}-byte cap")]
    TooLarge {
        /// Declared length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The payload does not decode as the expected message.
    #[error("frame does not decode: {0}")]
    Decode(String),
}

/// Encodes a message as one frame.
pub fn encode_frame<T: Serialize>(message: &T) -> Vec<u8> {
    let payload = postcard::to_stdvec(message).expect("wire messages always serialise");
    let len = u32::try_from(payload.len()).expect("frames are far below 4 GiB");
    let mut out = Vec::with_capacity(FRAME_HEADER + payload.len());
    out.push(PROTOCOL_VERSION);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Checks a frame header and returns the payload length.
fn check_header(header: [u8; FRAME_HEADER], max: usize) -> Result<usize, FrameError> {
    if header[0] != PROTOCOL_VERSION {
        return Err(FrameError::Version(header[0]));
    }
    let len = u32::from_le_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len)
}

fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    postcard::from_bytes(payload).map_err(|e| FrameError::Decode(e.to_string()))
}

/// Decodes one frame from the front of `bytes`; returns the message and the
/// bytes consumed. For tests and fuzzing without sockets.
pub fn decode_frame<T: DeserializeOwned>(
    bytes: &[u8],
    max: usize,
) -> Result<(T, usize), FrameError> {
    let header: [u8; FRAME_HEADER] = bytes
        .get(..FRAME_HEADER)
        .ok_or(FrameError::Truncated)?
        .try_into()
        .expect("5 bytes");
    let len = check_header(header, max)?;
    let payload = bytes
        .get(FRAME_HEADER..FRAME_HEADER + len)
        .ok_or(FrameError::Truncated)?;
    Ok((decode_payload(payload)?, FRAME_HEADER + len))
}

/// Reads one frame. Returns `Ok(None)` if the stream ended cleanly before
/// the first byte.
pub async fn read_frame<T: DeserializeOwned>(
    reader: &mut (impl AsyncRead + Unpin),
    max: usize,
) -> Result<Option<T>, FrameError> {
    let mut header = [0u8; FRAME_HEADER];
    let mut filled = 0;
    while filled < FRAME_HEADER {
        let n = reader.read(&mut header[filled..]).await?;
        if n == 0 {
            return if filled == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        filled += n;
    }
    let len = check_header(header, max)?;
    let mut payload = vec![0u8; len];
    reader
        .read_exact(&mut payload)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => FrameError::Truncated,
            _ => FrameError::Io(e),
        })?;
    decode_payload(&payload).map(Some)
}

/// Writes one frame.
pub async fn write_frame<T: Serialize>(
    writer: &mut (impl AsyncWrite + Unpin),
    message: &T,
) -> Result<(), FrameError> {
    writer.write_all(&encode_frame(message)).await?;
    Ok(())
}

mod admin;
mod console;
mod peer;
mod server;
mod views;

pub use admin::*;
pub use console::*;
pub use peer::*;
pub use server::*;
pub use views::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::election::Attributes;
    use branchline_storage::NodeId;

    #[test]
    fn frames_round_trip_in_memory_and_over_a_stream() {
        let req = PeerRequest::GetPiece {
            content: branchline_storage::Hash([3; 32]),
            index: 7,
        };
        let bytes = encode_frame(&req);
        let (back, used) = decode_frame::<PeerRequest>(&bytes, MAX_REQUEST_FRAME).unwrap();
        assert_eq!((back, used), (req.clone(), bytes.len()));

        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let (mut a, mut b) = tokio::io::duplex(1024);
            write_frame(&mut a, &req).await.unwrap();
            drop(a);
            let got: Option<PeerRequest> = read_frame(&mut b, MAX_REQUEST_FRAME).await.unwrap();
            assert_eq!(got, Some(req));
            let end: Option<PeerRequest> = read_frame(&mut b, MAX_REQUEST_FRAME).await.unwrap();
            assert_eq!(end, None);
        });
    }

    #[test]
    fn oversized_frames_are_refused_before_allocating() {
        let mut bytes = vec![PROTOCOL_VERSION];
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        let err = decode_frame::<PeerRequest>(&bytes, MAX_REQUEST_FRAME).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("frame of {} bytes is over the 65536-byte cap", u32::MAX)
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err = rt
            .block_on(read_frame::<PeerRequest>(
                &mut &bytes[..],
                MAX_REQUEST_FRAME,
            ))
            .unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }));
    }

    #[test]
    fn wrong_version_truncation_and_garbage_are_named() {
        let mut bytes = encode_frame(&ServerRequest::Heartbeat {
            id: NodeId([1; 16]),
            attributes: Attributes::default(),
            counters: ByteCounters::default(),
        });
        bytes[0] = 9;
        let err = decode_frame::<ServerRequest>(&bytes, MAX_REQUEST_FRAME).unwrap_err();
        assert_eq!(
            err.to_string(),
            "frame version 9 is not supported (this node speaks 5)"
        );
        let good = encode_frame(&ServerRequest::Heartbeat {
            id: NodeId([1; 16]),
            attributes: Attributes::default(),
            counters: ByteCounters::default(),
        });
        let err =
            decode_frame::<ServerRequest>(&good[..good.len() - 1], MAX_REQUEST_FRAME).unwrap_err();
        assert!(matches!(err, FrameError::Truncated));
        let garbage = [PROTOCOL_VERSION, 3, 0, 0, 0, 0xff, 0xff, 0xff];
        assert!(matches!(
            decode_frame::<ServerRequest>(&garbage, MAX_REQUEST_FRAME),
            Err(FrameError::Decode(_))
        ));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err = rt
            .block_on(read_frame::<ServerRequest>(
                &mut &good[..3],
                MAX_REQUEST_FRAME,
            ))
            .unwrap_err();
        assert!(matches!(err, FrameError::Truncated));
    }

    #[test]
    fn random_frames_decode_or_fail_but_never_panic() {
        let mut x: u32 = 0x1234_5678;
        for _ in 0..2000 {
            let len = (x % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x.to_le_bytes()[0]
                })
                .collect();
            let mut bytes = bytes;
            if let Some(first) = bytes.first_mut() {
                *first = PROTOCOL_VERSION;
            }
            let _ = decode_frame::<ServerRequest>(&bytes, MAX_REQUEST_FRAME);
            let _ = decode_frame::<PeerRequest>(&bytes, MAX_REQUEST_FRAME);
            let _ = decode_frame::<AdminRequest>(&bytes, MAX_REQUEST_FRAME);
        }
    }
}
