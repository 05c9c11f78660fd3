//! The file `fetch --out` writes, owned by the command rather than by the
//! node: the command resolves the path (a relative one against its own
//! working directory), creates `PATH.partial` exclusively and never
//! through a symlink, hands the open file to the node (which writes every
//! verified piece into it), then syncs it and renames it to `PATH`: over
//! nothing unless `--force`. A fetch that fails removes the `.partial`
//! file; an existing file at `PATH` is never touched unless `--force`.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{CWD, RenameFlags};

/// Why the output could not be prepared or finished. Each names the path.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A file is already there.
    #[error("{0} exists; refusing to replace it (add --force to replace it)")]
    Exists(PathBuf),
    /// A file appeared there while the content was being fetched.
    #[error(
        "{0} appeared while the content was being fetched; it was not replaced (add --force to replace it)"
    )]
    AppearedMeanwhile(PathBuf),
    /// A directory is there.
    #[error("{0} is a directory; give the path of a file")]
    IsDirectory(PathBuf),
    /// The directory to write into is missing.
    #[error("the directory of {0} does not exist")]
    NoDirectory(PathBuf),
    /// A `.partial` file of an earlier fetch is in the way.
    #[error(
        "{0} exists (left by an interrupted fetch, or another fetch writes it now); remove it, or add --force"
    )]
    PartialExists(PathBuf),
    /// The written file is not the content's size.
    #[error("{path} holds {got} bytes after writing, expected {expected}; it was removed")]
    WrongSize {
        /// The `.partial` file.
        path: PathBuf,
        /// Its size.
        got: u64,
        /// The content's size.
        expected: u64,
    },
    /// The file system refused.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> OutputError + 'a {
    move |source| OutputError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// An output being written: `PATH.partial`, removed on drop unless
/// [`OutputFile::commit`] renamed it to `PATH`.
#[derive(Debug)]
pub struct OutputFile {
    path: PathBuf,
    partial: PathBuf,
    file: File,
    force: bool,
    committed: bool,
}

impl OutputFile {
    /// Checks `out` and creates `out.partial` (exclusively, never through a
    /// symlink). Without `force`, an existing `out` is refused; with it, a
    /// stale `out.partial` is removed first.
    pub fn create(out: &Path, force: bool) -> Result<Self, OutputError> {
        let path = std::path::absolute(out).map_err(io("resolve", out))?;
        if out.as_os_str().as_encoded_bytes().ends_with(b"/") || path.is_dir() {
            return Err(OutputError::IsDirectory(path));
        }
        match path.parent() {
            Some(dir) if dir.is_dir() => {}
            _ => return Err(OutputError::NoDirectory(path)),
        }
        if !force && std::fs::symlink_metadata(&path).is_ok() {
            return Err(OutputError::Exists(path));
        }
        let mut partial = path.clone().into_os_string();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        if force {
            match std::fs::symlink_metadata(&partial) {
                Ok(meta) if meta.is_dir() => return Err(OutputError::IsDirectory(partial)),
                // A symlink is removed, not followed.
                Ok(_) => std::fs::remove_file(&partial).map_err(io("remove", &partial))?,
                Err(_) => {}
            }
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .mode(0o644)
            .open(&partial)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => OutputError::PartialExists(partial.clone()),
                _ => io("create", &partial)(e),
            })?;
        Ok(OutputFile {
            path,
            partial,
            file,
            force,
            committed: false,
        })
    }

    /// The open `.partial` file, to pass to the node.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Where the content goes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks the written file is `size` bytes, syncs it, and renames it to
    /// its path (over nothing, unless `force`), then syncs the directory.
    pub fn commit(mut self, size: u64) -> Result<PathBuf, OutputError> {
        let got = self
            .file
            .metadata()
            .map_err(io("read", &self.partial))?
            .len();
        if got != size {
            return Err(OutputError::WrongSize {
                path: self.partial.clone(),
                got,
                expected: size,
            });
        }
        self.file.sync_all().map_err(io("sync", &self.partial))?;
        let flags = match self.force {
            true => RenameFlags::empty(),
            false => RenameFlags::NOREPLACE,
        };
        rustix::fs::renameat_with(CWD, &self.partial, CWD, &self.path, flags).map_err(
            |e| match e {
                rustix::io::Errno::EXIST => OutputError::AppearedMeanwhile(self.path.clone()),
                e => io("rename to", &self.path)(e.into()),
            },
        )?;
        self.committed = true;
        if let Some(dir) = self.path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io("sync", dir))?;
        }
        Ok(self.path.clone())
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_file_is_written_through_partial_and_an_existing_one_needs_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pkg.bin");
        let mut out = OutputFile::create(&path, false).unwrap();
        assert!(dir.path().join("pkg.bin.partial").exists());
        out.file.write_all(b"new").unwrap();
        assert_eq!(out.commit(3).unwrap(), path);
        assert!(!dir.path().join("pkg.bin.partial").exists());
        assert_eq!(std::fs::read(&path).unwrap(), b"new");

        let err = OutputFile::create(&path, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} exists; refusing to replace it (add --force to replace it)",
                path.display()
            )
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"new", "untouched");
        let mut out = OutputFile::create(&path, true).unwrap();
        out.file.write_all(b"newer").unwrap();
        out.commit(5).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"newer");
    }

    #[test]
    fn a_file_that_appears_meanwhile_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pkg.bin");
        let mut out = OutputFile::create(&path, false).unwrap();
        out.file.write_all(b"fetched").unwrap();
        std::fs::write(&path, b"someone else's").unwrap();
        let err = out.commit(7).unwrap_err();
        assert!(matches!(err, OutputError::AppearedMeanwhile(_)), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"someone else's");
        assert!(
            !dir.path().join("pkg.bin.partial").exists(),
            "partial removed"
        );
    }

    #[test]
    fn a_symlinked_partial_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let path = dir.path().join("pkg.bin");
        std::os::unix::fs::symlink(&victim, dir.path().join("pkg.bin.partial")).unwrap();
        let err = OutputFile::create(&path, false).unwrap_err();
        assert!(matches!(err, OutputError::PartialExists(_)), "{err}");
        // With --force the link itself is removed, and the victim kept.
        let out = OutputFile::create(&path, true).unwrap();
        assert!(
            !std::fs::symlink_metadata(&out.partial)
                .unwrap()
                .is_symlink()
        );
        drop(out);
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(
            !dir.path().join("pkg.bin.partial").exists(),
            "removed on drop"
        );
    }

    #[test]
    fn bad_paths_and_short_writes_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = OutputFile::create(dir.path(), false).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("is a directory; give the path of a file"),
            "{err}"
        );
        let err = OutputFile::create(&dir.path().join("no/such/dir/x"), false).unwrap_err();
        assert!(err.to_string().starts_with("the directory of"), "{err}");
        let path = dir.path().join("short.bin");
        let out = OutputFile::create(&path, false).unwrap();
        let err = out.commit(10).unwrap_err();
        assert!(
            err.to_string()
                .contains("holds 0 bytes after writing, expected 10"),
            "{err}"
        );
        assert!(!path.exists());
        assert!(!dir.path().join("short.bin.partial").exists());
    }
}
