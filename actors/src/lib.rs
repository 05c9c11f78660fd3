//! Branchline's actors and the decisions they make.
//!
//! # Layout
//! By role, each folder a module whose doc lists its files:
//! - [`server`]: the registry, offices and their RVP elections, sources
//!   answers.
//! - [`client`]: the office view, transfers, the RVP, the store, piece
//!   picking.
//! - [`pacing`]: the background protocol's controller, the busy pause, the
//!   token bucket.
//! - [`topology`]: offices in a tree, office resolution, the spreadsheet.
//! - [`wire`]: frames and the messages of the three conversations (peer,
//!   server, admin).
//!
//! And what every role uses:
//! - [`messages`]: what these actors ask of the runtime's I/O actors.
//! - [`supervision`]: restart in place on stop or panic, with backoff.
//! - [`panics`]: every panic handled where it happened, or the node ends.

pub mod client;
pub mod clock;
pub mod messages;
pub mod pacing;
pub mod panics;
pub mod server;
pub mod supervision;
pub mod topology;
pub mod wire;

/// Lock poisoning, handled one way everywhere (see the storage crate).
pub use branchline_storage::lock_unpoisoned;
