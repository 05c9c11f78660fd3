//! The server's side: who is registered where, who holds what, which
//! clients are an office's RVPs, and the answers to "where can I get
//! pieces of X".
//!
//! - [`registry`]: the registry as a plain state machine: clients,
//!   holdings, origin leases.
//! - [`registry_actor`]: the registry behind a bounded mailbox, persisted
//!   to sled.
//! - [`offices`]: who is in which office, and its elected RVPs.
//! - [`election`]: ranking an office's clients; the first are its RVPs.
//! - [`holdings_log`]: what changed in a content's holdings, version by
//!   version.
//! - [`answer_delta`]: a sources answer as a delta against the asker's
//!   last one.

pub mod answer_delta;
pub mod election;
pub mod holdings_log;
pub mod offices;
pub mod registry;
pub mod registry_actor;
