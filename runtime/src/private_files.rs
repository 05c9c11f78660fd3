//! A node's files are its own: data directories are 0700 and every file a
//! node makes is 0600, whatever umask it was started with. A node sets
//! its umask to 077 when it starts ([`restrict_umask`]), so sled, the
//! piece files, sockets and logs it creates inherit it, and makes its data
//! directory 0700 at every start (which also closes one made by an older
//! version to other users).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rustix::fs::Mode;

/// Files a node creates get no permission for group or others.
pub fn restrict_umask() {
    rustix::process::umask(Mode::from_raw_mode(0o077));
}

/// Creates `dir` (and its parents) if missing, and makes it 0700.
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Writes `bytes` to a new file at `path`, mode 0600, and syncs it; fails
/// if the file exists.
pub fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_closed_even_if_it_was_open() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
        create_dir(&data).unwrap();
        let mode = std::fs::metadata(&data).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        write_new(&data.join("f"), b"x").unwrap();
        let mode = std::fs::metadata(data.join("f"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            write_new(&data.join("f"), b"y").is_err(),
            "never overwrites"
        );
    }
}
