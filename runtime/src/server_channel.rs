//! How a client's server link reaches the server: over QUIC, one stream
//! per request (a node), or in memory, to the server's directory actor in
//! the same process (the harness in simulated time, [`crate::sim`]). The
//! link itself, and everything it decides, is the same either way.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use branchline_actors::messages::LinkError;
use branchline_actors::wire::{MAX_REPLY_FRAME, ServerReply, ServerRequest};

use crate::revocation::Trust;
use crate::sim::ServerPort;
use crate::transport::connection_slot::ConnectionSlot;
use crate::transport::exchange::exchange;

/// Deadline for dialling the server.
const DIAL_DEADLINE: Duration = Duration::from_secs(5);
/// Deadline for one call (long-polls wait up to 5 s on the server).
const CALL_DEADLINE: Duration = Duration::from_secs(15);

/// Where the link's calls go.
#[derive(Clone)]
pub enum ServerChannel {
    /// Over QUIC.
    Quic(ConnectionSlot),
    /// In memory, to a directory actor of this process.
    InMemory(ServerPort),
}

impl ServerChannel {
    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        match self {
            ServerChannel::Quic(slot) => slot.addr(),
            ServerChannel::InMemory(port) => port.server_addr(),
        }
    }

    /// Under the cluster PKI: the QUIC connection is closed if the server's
    /// certificate is revoked.
    pub fn guarded_by(self, trust: Option<Arc<Trust>>) -> Self {
        match self {
            ServerChannel::Quic(slot) => ServerChannel::Quic(slot.guarded_by(trust)),
            other => other,
        }
    }

    /// One request, one reply, within [`CALL_DEADLINE`].
    pub async fn call(&self, request: ServerRequest) -> Result<ServerReply, LinkError> {
        let unreachable = |reason: String| LinkError::Unreachable {
            addr: self.addr(),
            reason,
        };
        let ask = async {
            match self {
                ServerChannel::Quic(slot) => {
                    let streams = slot
                        .open(DIAL_DEADLINE)
                        .await
                        .map_err(|e| unreachable(e.to_string()))?;
                    let (reply, _) = exchange(streams, &request, MAX_REPLY_FRAME)
                        .await
                        .map_err(|e| unreachable(e.to_string()))?;
                    Ok(reply)
                }
                ServerChannel::InMemory(port) => port
                    .call(request)
                    .await
                    .map_err(|e| unreachable(e.to_string())),
            }
        };
        tokio::time::timeout(CALL_DEADLINE, ask)
            .await
            .unwrap_or_else(|_| {
                Err(unreachable(format!(
                    "no answer within {} s",
                    CALL_DEADLINE.as_secs()
                )))
            })
    }
}
