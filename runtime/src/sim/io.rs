//! The simulated I/O actors a client's real actors talk to: the piece
//! transports (a peer's pieces read from that peer's real store, then
//! carried across the simulated links), the origin, subnet discovery, and
//! the port its real server link calls the server's real directory
//! through.

use std::net::{IpAddr, SocketAddr};

use actix::prelude::*;
use branchline_actors::messages::{
    Discover, FetchError, FetchFromOrigin, FetchFromPeer, FetchManifest,
};
use branchline_actors::server::directory::DirectoryActor;
use branchline_actors::server::office_messages::Serve;
use branchline_actors::wire::{PeerHolding, ServerReply, ServerRequest};
use branchline_storage::Manifest;
use branchline_storage::publication::SignedPublication;
use bytes::Bytes;

use super::SimError;
use super::net::SimNet;

/// How long reaching a node that is cut off takes to fail, as a dial that
/// gets no answer does (the transports' and the server link's deadline).
const DIAL_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// `result`, after the dial deadline if it is a node cut off: nothing
/// fails at once in a network.
async fn failing_slowly<T>(result: Result<T, SimError>) -> Result<T, SimError> {
    if matches!(result, Err(SimError::Down(_))) {
        tokio::time::sleep(DIAL_DEADLINE).await;
    }
    result
}
use crate::transport::peer_session::{manifest_for_peer, read_for_peer};

/// Where a simulated client's server link reaches the server's directory.
#[derive(Clone)]
pub struct ServerPort {
    /// The directory.
    pub directory: Addr<DirectoryActor>,
    /// The address the server listens at (for messages).
    pub server: SocketAddr,
    /// The client's address, as the server sees it.
    pub from: SocketAddr,
    /// The network, for the delay and whether the client is cut off.
    pub net: SimNet,
}

impl ServerPort {
    /// The server's address.
    pub fn server_addr(&self) -> SocketAddr {
        self.server
    }

    /// One request to the directory, each way delayed by the links between
    /// the client and the top office.
    pub async fn call(&self, request: ServerRequest) -> Result<ServerReply, String> {
        let delay = failing_slowly(self.net.delay_to_top(self.from.ip()))
            .await
            .map_err(|e| e.to_string())?;
        tokio::time::sleep(delay).await;
        let reply = self
            .directory
            .send(Serve {
                request,
                from: self.from,
            })
            .await
            .map_err(|e| format!("the server is gone: {e}"))?;
        tokio::time::sleep(delay).await;
        if self.net.is_down(self.from.ip()) {
            return Err(SimError::Down(self.from.ip()).to_string());
        }
        Ok(reply)
    }
}

/// A client's transport (foreground or background): pieces and manifests
/// from peers' stores across the simulated links.
pub struct SimTransport {
    /// The network.
    pub net: SimNet,
    /// This client's address.
    pub me: IpAddr,
}

impl Actor for SimTransport {
    type Context = Context<Self>;
}

impl Handler<FetchFromPeer> for SimTransport {
    type Result = ResponseFuture<Result<Bytes, FetchError>>;
    fn handle(&mut self, msg: FetchFromPeer, _: &mut Context<Self>) -> Self::Result {
        let (net, me) = (self.net.clone(), self.me);
        Box::pin(async move {
            let peer = msg.addr.ip();
            let holder = failing_slowly(net.holder(peer))
                .await
                .map_err(SimError::fetch)?;
            let bytes = read_for_peer(&holder.store, &holder.counters, msg.content, msg.index)
                .await
                .map_err(FetchError::Refused)?;
            if bytes.len() != msg.len as usize {
                return Err(FetchError::Protocol(format!(
                    "{} bytes for a piece of {}",
                    bytes.len(),
                    msg.len
                )));
            }
            let arrives = net
                .carry(peer, me, bytes.len() as u64)
                .map_err(SimError::fetch)?;
            tokio::time::sleep_until(arrives).await;
            if net.is_down(peer) || net.is_down(me) {
                return Err(FetchError::Unreachable("the connection broke".into()));
            }
            Ok(Bytes::from(bytes))
        })
    }
}

impl Handler<FetchManifest> for SimTransport {
    type Result = ResponseFuture<Result<(Manifest, SignedPublication), FetchError>>;
    fn handle(&mut self, msg: FetchManifest, _: &mut Context<Self>) -> Self::Result {
        let (net, me) = (self.net.clone(), self.me);
        Box::pin(async move {
            let peer = msg.addr.ip();
            let holder = failing_slowly(net.holder(peer))
                .await
                .map_err(SimError::fetch)?;
            let answer = manifest_for_peer(&holder.store, msg.content)
                .await
                .map_err(FetchError::Refused)?;
            let arrives = net.carry(peer, me, 1024).map_err(SimError::fetch)?;
            tokio::time::sleep_until(arrives).await;
            Ok(answer)
        })
    }
}

/// The origin: byte ranges of the packages the network serves, carried
/// from the origin's link down to the asker.
pub struct SimOrigin {
    /// The network.
    pub net: SimNet,
    /// This client's address.
    pub me: IpAddr,
}

impl Actor for SimOrigin {
    type Context = Context<Self>;
}

impl Handler<FetchFromOrigin> for SimOrigin {
    type Result = ResponseFuture<Result<Bytes, FetchError>>;
    fn handle(&mut self, msg: FetchFromOrigin, _: &mut Context<Self>) -> Self::Result {
        let (net, me) = (self.net.clone(), self.me);
        Box::pin(async move {
            let bytes = net
                .origin_range(&msg.url, msg.offset, msg.len)
                .map_err(SimError::fetch)?;
            let arrives = failing_slowly(net.carry_from_origin(&msg.url, me, bytes.len() as u64))
                .await
                .map_err(SimError::fetch)?;
            tokio::time::sleep_until(arrives).await;
            Ok(Bytes::from(bytes))
        })
    }
}

/// Subnet discovery: nobody answers a broadcast in the simulation (the
/// server is always asked first).
pub struct SimDiscovery;

impl Actor for SimDiscovery {
    type Context = Context<Self>;
}

impl Handler<Discover> for SimDiscovery {
    type Result = MessageResult<Discover>;
    fn handle(&mut self, _: Discover, _: &mut Context<Self>) -> Self::Result {
        MessageResult(Vec::<PeerHolding>::new())
    }
}
