//! The command line tools that talk to a running node over its admin
//! socket: `publish`, `purge`, `fetch`, `status`, `topology`, `shell`,
//! `token`, `url`, `admin` and `health`.

pub mod admin;
pub mod fetch;
pub mod health;
pub mod output_file;
pub mod publish;
pub mod purge;
pub mod shell;
pub mod status;
pub mod token;
pub mod topology;

use std::path::PathBuf;

use anyhow::Context as _;

use branchline_actors::wire::{AdminReply, AdminRequest};

use crate::cli::NodeLocator;
use crate::config;

/// The data directory of the node a tool talks to.
pub fn data_dir(node: &NodeLocator) -> anyhow::Result<PathBuf> {
    match (&node.config, &node.data_dir) {
        (Some(path), _) => Ok(config::data_dir_of(path)?),
        (None, Some(dir)) => Ok(dir.clone()),
        (None, None) => anyhow::bail!("give --config or --data-dir"),
    }
}

/// Asks the node `node` locates, over its admin socket.
pub fn ask(node: &NodeLocator, request: &AdminRequest) -> anyhow::Result<AdminReply> {
    let data_dir = data_dir(node)?;
    Ok(runtime()?.block_on(crate::admin::connect::request(
        &crate::admin::socket_path(&data_dir),
        request,
        Some,
    ))?)
}

/// A single-threaded runtime for a tool's one conversation.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tool's runtime")
}

/// Formats bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// A time stamp in ms since the epoch as UTC text.
pub fn utc(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => format!("{ms} ms after the epoch"),
    }
}
