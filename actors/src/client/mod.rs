//! The client's side: its view of its office, its downloads, and the pieces
//! it holds.
//!
//! Actors (each with a bounded mailbox, each supervised):
//! - [`office`]: the node's office; starts transfers and answers their
//!   source queries.
//! - [`transfer`]: one per content being downloaded; what it asks of its
//!   office is in [`office_asks`].
//! - [`rvp`]: on an elected RVP, pulls what its office wants.
//! - [`store`]: the piece cache, on the blocking pool.
//!
//! Decisions, plain state machines tested without sockets:
//! - [`picker`]: piece picking and request bookkeeping for one download.
//! - [`known_sources`]: what a download knows of its sources.
//! - [`stuck`]: the deadline on a piece whose holders never deliver it.
//! - [`strikes`]: strikes and bans against peers that sent bad bytes.
//! - [`discovery`]: subnet broadcast discovery: datagrams and rules.
//!
//! Shared by the client's actors:
//! - [`counters`]: the node's byte counters.
//! - [`have_reporter`]: have reports to the server link, the last never
//!   lost.

pub mod counters;
pub mod discovery;
pub mod have_reporter;
pub mod known_sources;
pub mod office;
pub mod office_asks;
pub mod picker;
pub mod rvp;
pub mod store;
pub mod strikes;
pub mod stuck;
pub mod transfer;
