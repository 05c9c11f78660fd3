//! One request, one QUIC stream, one reply: how a node asks the server or a
//! peer anything. The request is the only frame on the stream's send side,
//! which is then finished; the reply is the first frame back, and the
//! receive side stays open for bytes that follow it (a piece).

use branchline_actors::wire::{read_frame, write_frame};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Where an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The request did not go out (the connection is gone).
    #[error("{0}")]
    Send(String),
    /// The reply did not come, or was not a frame of the protocol.
    #[error("{0}")]
    Reply(String),
}

/// Sends `request` on `streams` and reads a reply of at most `max` bytes.
pub async fn exchange<Q: Serialize, R: DeserializeOwned>(
    (mut send, mut recv): (quinn::SendStream, quinn::RecvStream),
    request: &Q,
    max: usize,
) -> Result<(R, quinn::RecvStream), ExchangeError> {
    write_frame(&mut send, request)
        .await
        .map_err(|e| ExchangeError::Send(e.to_string()))?;
    send.finish()
        .map_err(|e| ExchangeError::Send(e.to_string()))?;
    let reply = read_frame(&mut recv, max)
        .await
        .map_err(|e| ExchangeError::Reply(e.to_string()))?
        .ok_or_else(|| ExchangeError::Reply("the stream ended before the reply".into()))?;
    Ok((reply, recv))
}
