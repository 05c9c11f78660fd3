//! `branchline fetch`: ask the local client for a content, show progress,
//! and write the file (or only cache it: pre-staging). The command opens
//! the output itself ([`OutputFile`]) and passes it to the node, which
//! writes every piece into it after verifying it again.

use std::path::{Path, PathBuf};

use branchline_actors::wire::{AdminReply, AdminRequest, TransferProgress};
use branchline_storage::ContentId;
use indicatif::{ProgressBar, ProgressStyle};

use super::output_file::OutputFile;
use super::{data_dir, mib, runtime};
use crate::admin::{connect, socket_path};
use crate::cli::FetchArgs;

/// Runs `branchline fetch`.
pub fn run(args: &FetchArgs) -> anyhow::Result<()> {
    let content: ContentId = args.content.parse()?;
    let data_dir = data_dir(&args.node)?;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:20} {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("valid template"),
    );
    let done = runtime()?.block_on(fetch_to(
        &socket_path(&data_dir),
        content,
        args.out.as_deref(),
        args.force,
        |p| show(&bar, p),
    ));
    bar.finish_and_clear();
    let (done, written) = done?;
    let what = match written {
        Some(out) => format!("wrote {}", out.display()),
        None => format!("cached {content}"),
    };
    eprintln!(
        "{what}: {} ({} from office peers, {} from the parent office, {} from the origin in this transfer)",
        mib(done.size),
        mib(done.from_peers),
        mib(done.from_parent),
        mib(done.from_origin)
    );
    Ok(())
}

/// Asks the node at `socket` for `content`, passing each progress report
/// to `progress`; with `out`, the content is written there (replacing a
/// file only if `force`). Answers the final progress and the path written.
pub async fn fetch_to(
    socket: &Path,
    content: ContentId,
    out: Option<&Path>,
    force: bool,
    mut progress: impl FnMut(&TransferProgress),
) -> anyhow::Result<(TransferProgress, Option<PathBuf>)> {
    let output = out.map(|out| OutputFile::create(out, force)).transpose()?;
    let request = AdminRequest::Fetch {
        content,
        out: output.as_ref().map(|o| o.path().to_owned()),
    };
    let done = connect::request_with_file(
        socket,
        &request,
        output.as_ref().map(OutputFile::file),
        |reply| match reply {
            AdminReply::Progress(p) => {
                progress(&p);
                None
            }
            AdminReply::Fetched(p) => Some(Ok(p)),
            AdminReply::Error(e) => Some(Err(anyhow::anyhow!(e))),
            other => Some(Err(anyhow::anyhow!("unexpected answer {other:?}"))),
        },
    )
    .await??;
    progress(&done);
    let written = output.map(|o| o.commit(done.size)).transpose()?;
    Ok((done, written))
}

/// Shows one progress report on a bar.
pub fn show(bar: &ProgressBar, p: &TransferProgress) {
    bar.set_length(p.size);
    bar.set_position(p.have_bytes);
    bar.set_message(if p.name.is_empty() {
        "starting".to_owned()
    } else {
        p.name.clone()
    });
}
