//! The simulated I/O actors a client's real actors talk to: the piece
//! transports (a peer's pieces read from that peer's real store, then
//! carried across the simulated links), the origin, subnet discovery, and
//! the port its real server link calls the server's real directory
//! through.

use std::net::{IpAddr, SocketAddr};

use std::sync::Arc;

use actix::prelude::*;
use branchline_actors::client::counters::Counters;
use branchline_actors::client::discovery::{may_ask, should_answer};
use branchline_actors::client::store::Lookup;
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
use crate::link_status::LinkStatus;

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
    pub async fn call(&self, request: ServerRequest) -> Result<ServerReply, SimError> {
        if self.net.is_down(self.server.ip()) {
            return failing_slowly(Err(SimError::Down(self.server.ip()))).await;
        }
        let delay = failing_slowly(self.net.delay_to_top(self.from.ip())).await?;
        tokio::time::sleep(delay).await;
        let reply = self
            .directory
            .send(Serve {
                request,
                from: self.from,
            })
            .await?;
        tokio::time::sleep(delay).await;
        for cut in [self.from.ip(), self.server.ip()] {
            if self.net.is_down(cut) {
                return Err(SimError::Down(cut));
            }
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
            if arrives > msg.deadline {
                tokio::time::sleep_until(msg.deadline).await;
                return Err(FetchError::Timeout);
            }
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

/// A client's subnet discovery: its question reaches the nodes up on its
/// /24 (none from a node cut off), each answers from its real store by the
/// real rules (office types that never broadcast or never answer, nothing
/// confidential), and the asker takes what came within the discovery wait.
pub struct SimDiscovery {
    /// The network.
    pub net: SimNet,
    /// This client's address.
    pub me: IpAddr,
    /// What this client's server link knows (its office type).
    pub link: Arc<LinkStatus>,
    /// This client's counters (broadcasts sent).
    pub counters: Arc<Counters>,
}

impl Actor for SimDiscovery {
    type Context = Context<Self>;
}

impl Handler<Discover> for SimDiscovery {
    type Result = ResponseFuture<Vec<PeerHolding>>;
    fn handle(&mut self, msg: Discover, _: &mut Context<Self>) -> Self::Result {
        if !may_ask(self.link.office_kind()) {
            return Box::pin(async { Vec::new() });
        }
        self.counters.broadcast_sent();
        let neighbours = self.net.on_subnet(self.me);
        Box::pin(async move {
            let mut found = Vec::new();
            for (addr, n) in neighbours {
                let Ok(Ok(Some(cached))) = n.store.send(Lookup(msg.0)).await else {
                    continue;
                };
                if cached.confidential() || !should_answer(n.link.office_kind(), &cached.have) {
                    continue;
                }
                found.push(PeerHolding {
                    id: n.id,
                    addr: SocketAddr::new(addr, crate::config::DEFAULT_FOREGROUND_PORT),
                    have: cached.have,
                    upstream: false,
                    rank: u32::MAX,
                });
            }
            // As long as a client's question waits, by default.
            let wait = crate::config::DiscoverySection::default().wait_ms;
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            found
        })
    }
}
