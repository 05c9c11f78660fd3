//! The admin socket: a Unix socket in the node's data directory, readable
//! by the node's user only, through which the command line tools (`fetch`,
//! `publish`, `status`, and later the debug shell) talk to a running node.
//!
//! - [`listener`]: binding the socket safely (a live node already on it is
//!   an error; a stale socket file is replaced).
//! - [`client_node`] and [`server_node`]: what each kind of node answers.
//! - [`connect`]: the tool side.

pub mod client_node;
pub mod connect;
pub mod listener;
pub mod server_node;

use std::path::{Path, PathBuf};

/// The admin socket's path in a data directory.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin.sock")
}
