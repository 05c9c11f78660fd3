//! The harness in simulated time: a server's real directory and office
//! actors and several clients' real actors (server link, office, transfers,
//! RVP, store on a temporary directory) in one process, wired by in-memory
//! links that have a rate, a delay and a loss rate, on a paused tokio
//! clock. Only the I/O at the edges is simulated (QUIC streams, HTTP
//! ranges, broadcasts); every decision is the product's own code. A run is
//! deterministic up to the order in which actors that are ready at the
//! same simulated instant are polled, and its losses are drawn from a
//! seed.
//!
//! - [`link`]: a link's rate, delay and loss, with its queue.
//! - [`net`]: which office each node is in, the links between offices,
//!   the origin.
//! - [`io`]: the simulated I/O actors (transports, origin, discovery, the
//!   server port).
//! - [`world`]: a server, its offices and clients, publishing and
//!   fetching.
//!
//! Time: every actor takes `now` from `branchline_actors::clock`, which is
//! tokio's clock, and every wait is a tokio timer; paused, the clock jumps
//! to the next timer whenever every actor waits, and stands still while a
//! blocking job (a sled write, a hash) runs.

use std::net::IpAddr;

use branchline_actors::messages::FetchError;

pub mod io;
pub mod link;
pub mod net;
pub mod world;

pub use io::ServerPort;
pub use link::Link;
pub use net::SimNet;
pub use world::{SimClient, SimWorld};

/// What can go wrong in the simulated network.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SimError {
    /// No node at that address.
    #[error("no simulated node at {0}")]
    NoNode(IpAddr),
    /// The node is cut off.
    #[error("the node at {0} is cut off")]
    Down(IpAddr),
    /// A request was lost on a link.
    #[error("the request was lost on a link")]
    Lost,
    /// The origin serves nothing at that URL.
    #[error("the origin serves nothing at {0}")]
    NoOrigin(String),
    /// The origin has no link.
    #[error("the simulated origin has no link")]
    NoOriginLink,
    /// The server's directory actor is not running.
    #[error("the server is gone: {0}")]
    ServerGone(#[from] actix::MailboxError),
    /// A range beyond the package.
    #[error("bytes {offset}+{len} are beyond the package")]
    Range {
        /// First byte.
        offset: u64,
        /// Bytes asked for.
        len: u64,
    },
}

impl SimError {
    /// The error a fetch reports for it.
    pub fn fetch(self) -> FetchError {
        match self {
            SimError::Range { .. } | SimError::NoOrigin(_) => {
                FetchError::Protocol(self.to_string())
            }
            other => FetchError::Unreachable(other.to_string()),
        }
    }
}
