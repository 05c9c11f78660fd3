//! Branchline's actors and the decisions they make.
//!
//! # Layout
//! Decisions, plain state machines tested without sockets:
//! - [`picker`]: piece picking and request bookkeeping for one download.
//! - [`election`]: ranking an office's clients; the first are its RVPs.
//! - [`registry`]: the server's registry: clients, holdings, origin leases.
//! - [`offices`]: who is in which office, and its elected RVPs.
//! - [`topology`]: offices in a tree, office resolution, the spreadsheet.
//!
//! Actors (actix, each with a bounded mailbox, each `Supervised`):
//! - [`store`]: the piece cache, on the blocking pool.
//! - [`office`]: the node's office; starts transfers and answers their
//!   source queries.
//! - [`transfer`]: one per content being downloaded.
//! - [`rvp`]: on an elected RVP, pulls what its office wants.
//! - [`registry_actor`]: the server's registry, persisted to sled.
//!
//! Shared pieces:
//! - [`wire`]: frames and the messages of the three conversations (peer,
//!   server, admin).
//! - [`messages`]: what these actors ask of the runtime's I/O actors.
//! - [`counters`]: a node's byte counters.
//! - [`supervision`]: restart in place on stop or panic, with backoff.
//! - [`panics`]: every panic handled where it happened, or the node ends.
//! - [`discovery`]: subnet broadcast discovery: datagrams and rules.
//! - [`ledbat`]: the background protocol's delay-based congestion
//!   controller, a plain state machine.
//! - [`token_bucket`]: pacing a pull across a rate-capped office link.
//! - [`delay`]: queuing delay from RTT samples (RFC 6817's estimate).
//! - [`busy`]: the busy pause of the link into the office.
//! - [`have_reporter`]: have reports to the server link, the last never lost.
//! - [`stuck`]: the deadline on a piece whose holders never deliver it.

pub mod answer_delta;
pub mod busy;
pub mod counters;
pub mod delay;
pub mod discovery;
pub mod election;
pub mod have_reporter;
pub mod holdings_log;
pub mod known_sources;
pub mod ledbat;
pub mod messages;
pub mod office;
pub mod offices;
pub mod panics;
pub mod picker;
pub mod registry;
pub mod registry_actor;
pub mod rvp;
pub mod store;
pub mod strikes;
pub mod stuck;
pub mod supervision;
pub mod token_bucket;
pub mod topology;
pub mod transfer;
pub mod wire;

/// Locks a mutex whose data stays valid even if a holder panicked (plain
/// numbers and handles, changed in one step), so a poisoned lock is used
/// as it is instead of spreading the panic.
pub fn lock_unpoisoned<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
