//! The messages an office actor answers: a client's request (from the
//! directory), what an office below asks or tells its parent, and what the
//! directory tells every office. An office names its parent only by the
//! recipients of what it sends it ([`ParentOffice`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use actix::prelude::*;
use branchline_storage::{ContentId, NodeId};

use crate::server::catalogue::Catalogue;
use crate::server::registry::{Moving, OfficeReport, Upstream};
use crate::topology::{LinkBelow, Office, Topology};
use crate::wire::{ServerReply, ServerRequest};

/// What an office sends the office above it.
#[derive(Clone)]
pub struct ParentOffice {
    /// Its peers for a client crossing the WAN.
    pub ask: Recipient<AskUpstream>,
    /// This office wants a content.
    pub wanted: Recipient<Wanted>,
    /// A peer stopped answering a client of this office.
    pub suspect: Recipient<Suspect>,
}

/// A request from a client, with the address it came from.
#[derive(Debug, Message)]
#[rtype(result = "ServerReply")]
pub struct Serve {
    /// The request.
    pub request: ServerRequest,
    /// The client's address as the transport saw it.
    pub from: SocketAddr,
}

/// From an office below, for a client of it crossing the WAN: the peers of
/// the nearest office up the tree whose clients serve. `None`: no office
/// above has any.
#[derive(Message)]
#[rtype(result = "Option<Upstream>")]
pub struct AskUpstream {
    /// The content.
    pub content: ContentId,
    /// The client asking.
    pub asker: NodeId,
    /// Peers the asking office banned.
    pub banned: Vec<NodeId>,
    /// The asking office, told when the answer changes.
    pub below: String,
    /// How to tell it.
    pub notify: Recipient<UpstreamMoved>,
}

/// The peers an office above offered for a content changed.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct UpstreamMoved(pub ContentId);

/// An office below wants a content.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Wanted(pub ContentId);

/// A client of an office below says a peer stopped answering.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Suspect {
    /// The silent peer.
    pub peer: NodeId,
    /// Who says so.
    pub reporter: NodeId,
}

/// The published contents changed.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SetCatalogue(pub Arc<Catalogue>);

/// A new topology: the office as it describes it (`None`: it is gone),
/// and its parent. The answer is every client that belongs to another
/// office now, with what it holds, taken out of this one.
#[derive(Message)]
#[rtype(result = "Vec<Moving>")]
pub struct Replace {
    /// The office, if the topology still has it.
    pub spec: Option<(Office, Vec<LinkBelow>)>,
    /// Its parent office.
    pub parent: Option<ParentOffice>,
    /// The topology, to resolve its members' offices.
    pub topology: Arc<Topology>,
}

/// Clients moved here from other offices.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Adopt(pub Vec<Moving>);

/// The office's part of the server's status.
#[derive(Debug, Message)]
#[rtype(result = "OfficeReport")]
pub struct GetReport;

/// Asked of the directory by an office rebuilding itself: the office of
/// each address (`None`: no office claims it).
#[derive(Debug, Message)]
#[rtype(result = "Vec<Option<String>>")]
pub struct Resolve(pub Vec<IpAddr>);
