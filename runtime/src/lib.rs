//! The `branchline` runtime: everything a node runs, and the tools that
//! talk to a node. The binary (`main.rs`) only parses the command line and
//! calls in here; the benchmarks in `tools/` use the same pieces.
//!
//! # Layout
//! - [`cli`]: the command line; [`commands`]: `publish`, `fetch`, `status`;
//!   [`demo`]: `branchline demo`.
//! - [`config`]: server and client TOML with flag overrides; [`logging`];
//!   [`metrics`]: the Prometheus endpoint.
//! - [`node`]: starting a node (one actix System each) and its actors.
//! - [`transport`]: QUIC endpoint, peer sessions; [`tls`]; [`pki`]: the
//!   cluster CA; [`join`]: the server's own CA, join tokens, and a client
//!   joining with one; [`revocation`]: the CA's revocation list, live;
//!   [`vouch`]: the server's signature on publications.
//! - [`private_files`]: a node's directories 0700 and files 0600.
//! - [`discovery`]: subnet broadcast discovery, for when the server is
//!   out of reach.
//! - [`server_link`]: a client's link to the server, and [`link_status`]
//!   what it knows of its standing; [`control`]: the server's endpoint
//!   for it.
//! - [`origin`]: fetching from CDN or file storage, over [`origin_tls`];
//!   [`file_storage`]: the embedded file storage (HTTPS for members).
//! - [`admin`]: the local admin socket; [`identity`]: a node's id;
//!   [`attributes`]: what a client reports for elections.
//!
//! Errors: modules that other code builds on return `thiserror` enums; the
//! orchestration at the top (`node`, `commands`, `demo`), which only reports
//! to a person, uses `anyhow`.

pub mod admin;
pub mod attributes;
pub mod cli;
pub mod commands;
pub mod config;
pub mod console;
pub mod control;
pub mod demo;
pub mod discovery;
pub mod file_storage;
pub mod identity;
pub mod join;
pub mod link_status;
pub mod logging;
pub mod metrics;
pub mod node;
pub mod origin;
pub mod origin_tls;
pub mod pki;
pub mod private_files;
pub mod revocation;
pub mod server_channel;
pub mod server_link;
pub mod sim;
pub mod tls;
pub mod transport;
pub mod version_refusals;
pub mod vouch;
