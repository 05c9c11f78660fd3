//! `branchline publish`: hash a package as a stream (never loading it
//! whole) with a progress bar, choose its origins, and register it with the
//! server. The content id is the last line on stdout.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::Context as _;
use branchline_actors::wire::{AdminReply, AdminRequest, FileStorageView};
use branchline_storage::{ContentId, Manifest, Origin, OriginKind};
use indicatif::{ProgressBar, ProgressStyle};

use super::{data_dir, mib, runtime};
use crate::admin::{connect, socket_path};
use crate::cli::PublishArgs;
use crate::config::{self, ServerConfig};
use crate::origin::OriginUrl;

/// Runs `branchline publish`.
pub fn run(args: &PublishArgs) -> anyhow::Result<()> {
    let data_dir = match &args.node.config {
        Some(path) => config::load::<ServerConfig>(path)?.validate()?,
        None => data_dir(&args.node)?,
    };
    let socket = socket_path(&data_dir);
    let rt = runtime()?;
    // Fail before hashing many GB if the server is not there; learn where
    // its file storage is, if it runs one.
    let file_storage = rt.block_on(connect::request(
        &socket,
        &AdminRequest::Status,
        |reply| match reply {
            AdminReply::ServerStatus(status) => Some(Ok(status.file_storage)),
            AdminReply::ClientStatus(_) => Some(Err(anyhow::anyhow!(
                "{} is a client's data directory; publish needs the server's",
                data_dir.display()
            ))),
            other => Some(Err(anyhow::anyhow!("unexpected answer {other:?}"))),
        },
    ))??;
    let origins = origins(args, file_storage.as_ref())?;
    let name = match &args.name {
        Some(name) => name.clone(),
        None => args
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .context("the package path has no file name")?,
    };
    let manifest = hash_file(&args.file, &name, args.piece_size, true)?;
    let named: Vec<String> = origins
        .iter()
        .map(|o| format!("{} {}", o.kind.name(), o.url))
        .collect();
    let id = rt.block_on(publish_manifest(
        &socket,
        manifest.clone(),
        origins,
        args.confidential,
    ))?;
    let sharing = match args.confidential {
        true => "; confidential: origins only, never shared by peers",
        false => "",
    };
    eprintln!(
        "published {name}: {} in {} pieces of {}, origins: {}{sharing}",
        mib(manifest.size),
        manifest.piece_count(),
        mib(u64::from(manifest.piece_size)),
        named.join(", ")
    );
    println!("{id}");
    Ok(())
}

/// Hashes a package file into a manifest, optionally with a progress bar.
pub fn hash_file(
    path: &Path,
    name: &str,
    piece_size: u32,
    progress: bool,
) -> anyhow::Result<Manifest> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?;
    anyhow::ensure!(meta.is_file(), "{} is not a regular file", path.display());
    let bar = if progress {
        ProgressBar::new(meta.len())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("hashing {bar:40} {bytes}/{total_bytes} {bytes_per_sec}")
            .expect("valid template"),
    );
    let reader = BufReader::with_capacity(1 << 20, file);
    let manifest = Manifest::from_reader(name, reader, piece_size, |n| bar.set_position(n))
        .with_context(|| format!("cannot publish {}", path.display()))?;
    bar.finish_and_clear();
    Ok(manifest)
}

/// The origins given on the command line, each with its kind (checked),
/// or the default one (file storage).
fn origins(args: &PublishArgs, storage: Option<&FileStorageView>) -> anyhow::Result<Vec<Origin>> {
    let own = storage.map(|s| s.base_url.as_str());
    let given = args
        .cdns
        .iter()
        .map(|url| (url, OriginKind::Cdn))
        .chain(
            args.file_storages
                .iter()
                .map(|url| (url, OriginKind::FileStorage)),
        )
        .chain(
            args.origins
                .iter()
                .map(|url| (url, OriginKind::infer(url, own))),
        );
    let mut origins = Vec::new();
    for (url, kind) in given {
        let parsed = OriginUrl::parse(url)?;
        anyhow::ensure!(
            kind == OriginKind::FileStorage || !matches!(parsed, OriginUrl::File(_)),
            "--cdn {url}: a CDN is reached over http(s)://, not file://"
        );
        origins.push(Origin {
            url: url.clone(),
            kind,
        });
    }
    if origins.is_empty() {
        let url = default_origin(&args.file, storage)?;
        origins.push(Origin {
            url,
            kind: OriginKind::FileStorage,
        });
    }
    Ok(origins)
}

/// Registers a manifest with the server over its admin socket.
pub async fn publish_manifest(
    socket: &Path,
    manifest: Manifest,
    origins: Vec<Origin>,
    confidential: bool,
) -> anyhow::Result<ContentId> {
    let request = AdminRequest::Publish {
        manifest,
        origins,
        confidential,
    };
    connect::request(socket, &request, |reply| match reply {
        AdminReply::Published(id) => Some(Ok(id)),
        AdminReply::Error(e) => Some(Err(anyhow::anyhow!("the server refused the content: {e}"))),
        other => Some(Err(anyhow::anyhow!("unexpected answer {other:?}"))),
    })
    .await?
}

/// The origin of a package when none is given: its URL in the server's
/// embedded file storage if it lies inside it, else its `file://` path.
fn default_origin(file: &Path, storage: Option<&FileStorageView>) -> anyhow::Result<String> {
    let real = file
        .canonicalize()
        .with_context(|| format!("cannot open {}", file.display()))?;
    if let Some(storage) = storage
        && let Ok(root) = storage.dir.canonicalize()
        && let Ok(relative) = real.strip_prefix(&root)
    {
        let base = storage.base_url.trim_end_matches('/');
        return Ok(format!("{base}/{}", url_path(relative)));
    }
    eprintln!(
        "note: no origin given; clients will read file://{} (only where that path is visible)",
        real.display()
    );
    Ok(format!("file://{}", real.display()))
}

/// A relative path as URL path segments, with unsafe bytes escaped.
fn url_path(relative: &Path) -> String {
    let mut out = String::new();
    for (i, part) in relative.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        for b in part.to_string_lossy().bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_become_escaped_url_paths() {
        assert_eq!(url_path(Path::new("a/my pkg.bin")), "a/my%20pkg.bin");
        assert_eq!(url_path(Path::new("x%y")), "x%25y");
    }
}
