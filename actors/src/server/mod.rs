//! The server's side: which office each client is in, who holds what in
//! each office, which clients are an office's RVPs, and the answers to
//! "where can I get pieces of X".
//!
//! The actor tree: one [`directory::DirectoryActor`] (topology, published
//! contents, routing) and under it one [`office_actor::OfficeActor`] per
//! office that has clients (and each office above one), parent office
//! linked to child office.
//!
//! - [`directory`]: the directory actor, the topology in the store,
//!   publish and purge, status.
//! - [`office_actor`]: one office behind a bounded mailbox, persisted to
//!   sled, talking to the office above.
//! - [`office_messages`]: what an office actor answers.
//! - [`registry`]: one office's registry as a plain state machine:
//!   clients, holdings, origin leases, sources answers.
//! - [`offices`]: one office's members and its elected RVPs.
//! - [`election`]: ranking an office's clients; the first are its RVPs.
//! - [`catalogue`]: the published contents every office shares.
//! - [`seats`]: the cap on registered clients, shared by the offices.
//! - [`meta_writer`]: one thread writing every office's batches.
//! - [`holdings_log`]: what changed in a content's holdings, version by
//!   version.
//! - [`answer_delta`]: a sources answer as a delta against the asker's
//!   last one.

pub mod answer_delta;
pub mod catalogue;
pub mod directory;
pub mod election;
pub mod holdings_log;
pub mod meta_writer;
pub mod office_actor;
pub mod office_messages;
pub mod offices;
pub mod registry;
pub mod seats;
