//! Branchline's actors and the decisions they make.
//!
//! # Layout
//! - [`wire`]: frames and the messages of the three conversations (peer,
//!   server, admin).
//! - [`picker`]: piece picking and request bookkeeping for one download, a
//!   plain state machine.
//! - [`registry`]: the server's registry (clients, holdings, origin leases),
//!   a plain state machine.

pub mod picker;
pub mod registry;
pub mod wire;
