//! `branchline fetch`: ask the local client for a content, show progress,
//! and have it write the file (or only cache it: pre-staging).

use anyhow::Context as _;
use branchline_actors::wire::{AdminReply, AdminRequest, TransferProgress};
use branchline_storage::ContentId;
use indicatif::{ProgressBar, ProgressStyle};

use super::{data_dir, mib, runtime};
use crate::admin::{connect, socket_path};
use crate::cli::FetchArgs;

/// Runs `branchline fetch`.
pub fn run(args: &FetchArgs) -> anyhow::Result<()> {
    let content: ContentId = args.content.parse()?;
    let data_dir = data_dir(&args.node)?;
    let out = match &args.out {
        Some(out) => Some(
            std::path::absolute(out)
                .with_context(|| format!("bad output path {}", out.display()))?,
        ),
        None => None,
    };
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
    let request = AdminRequest::Fetch {
        content,
        out: out.clone(),
    };
    let done = runtime()?.block_on(connect::request(
        &socket_path(&data_dir),
        &request,
        |reply| match reply {
            AdminReply::Progress(p) => {
                show(&bar, &p);
                None
            }
            AdminReply::Fetched(p) => Some(Ok(p)),
            AdminReply::Error(e) => Some(Err(anyhow::anyhow!(e))),
            other => Some(Err(anyhow::anyhow!("unexpected answer {other:?}"))),
        },
    ));
    bar.finish_and_clear();
    let done = done??;
    let what = match &out {
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
