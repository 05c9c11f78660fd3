//! `branchline purge CONTENT`: removes a content from the server and, at
//! their next heartbeat, from every client's cache.

use branchline_actors::wire::{AdminReply, AdminRequest};
use branchline_storage::ContentId;

use super::{data_dir, runtime};
use crate::admin::{connect, socket_path};
use crate::cli::PurgeArgs;

/// Runs `branchline purge`.
pub fn run(args: &PurgeArgs) -> anyhow::Result<()> {
    let id: ContentId = args
        .content
        .parse()
        .map_err(|e| anyhow::anyhow!("`{}` is not a content id: {e}", args.content))?;
    let data_dir = data_dir(&args.node)?;
    let request = AdminRequest::Purge(id);
    match runtime()?.block_on(connect::request(&socket_path(&data_dir), &request, Some))? {
        AdminReply::Done(said) => {
            println!("{said}");
            Ok(())
        }
        AdminReply::Error(e) => anyhow::bail!(e),
        other => anyhow::bail!("unexpected answer {other:?}"),
    }
}
