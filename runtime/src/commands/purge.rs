//! `branchline purge CONTENT`: removes a content from the server and, at
//! their next heartbeat, from every client's cache.

use branchline_actors::wire::{AdminReply, AdminRequest};
use branchline_storage::ContentId;

use super::ask;
use crate::cli::PurgeArgs;

/// Runs `branchline purge`.
pub fn run(args: &PurgeArgs) -> anyhow::Result<()> {
    let id: ContentId = args
        .content
        .parse()
        .map_err(|e| anyhow::anyhow!("`{}` is not a content id: {e}", args.content))?;
    match ask(&args.node, &AdminRequest::Purge(id))? {
        AdminReply::Done(said) => {
            println!("{said}");
            Ok(())
        }
        AdminReply::Error(e) => anyhow::bail!(e),
        other => anyhow::bail!("unexpected answer {other:?}"),
    }
}
