//! The admin socket: a Unix socket in the node's data directory, readable
//! by the node's user only, through which the command line tools (`fetch`,
//! `publish`, `status`, and later the debug shell) talk to a running node.
//!
//! - [`listener`]: binding the socket safely (a live node already on it is
//!   an error; a stale socket file is replaced).
//! - [`client_node`] and [`server_node`]: what each kind of node answers.
//! - [`connect`]: the tool side.
//! - [`pass_file`]: a tool hands the node an open file (`fetch --out`).

pub mod client_node;
pub mod connect;
pub mod listener;
pub mod pass_file;
pub mod server_node;

use std::path::{Path, PathBuf};

/// The admin socket's path in a data directory.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin.sock")
}

/// Replaces the log filter of the node's process.
pub fn set_log(filter: &str) -> branchline_actors::wire::AdminReply {
    use branchline_actors::wire::AdminReply;
    match crate::logging::set_filter(filter) {
        Ok(()) => {
            tracing::info!(%filter, "log filter changed");
            AdminReply::Done(format!("log filter is now `{filter}`"))
        }
        Err(e) => AdminReply::Error(format!("cannot use that log filter: {e}")),
    }
}

/// Asks the node supervisor to make one of its actors stop or panic, and
/// says how it went (the debug shell's `kill`).
pub async fn kill_actor(
    supervisor: &actix::Addr<crate::node::supervisor::NodeSupervisor>,
    name: String,
    how: branchline_actors::supervision::Kill,
) -> branchline_actors::wire::AdminReply {
    use branchline_actors::wire::AdminReply;
    let what = how.word();
    let request = crate::node::supervisor::KillActor {
        name: name.clone(),
        how,
    };
    match supervisor.send(request).await {
        Ok(Ok(())) => AdminReply::Done(format!(
            "told `{name}` to {what}; watch its restarts in `actors`"
        )),
        Ok(Err(e)) => AdminReply::Error(e.to_string()),
        Err(e) => AdminReply::Error(format!("node supervisor unavailable: {e}")),
    }
}
