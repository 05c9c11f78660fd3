//! The parts of a file storage request that are plain text: the `Range`
//! header, and the URL path mapped to a file under the served directory
//! (percent escapes decoded; `..`, `.` and hidden segments refused).

use std::path::{Component, Path, PathBuf};

/// A `Range` header that cannot be served.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeError {
    /// Not of the form `bytes=a-b`, `bytes=a-` or `bytes=-n` (one range).
    Malformed,
    /// Outside the file.
    Unsatisfiable,
}

/// Parses a single-range `Range` header against a file of `size` bytes;
/// returns the inclusive byte range.
pub fn parse_range(header: &str, size: u64) -> Result<(u64, u64), RangeError> {
    let spec = header
        .trim()
        .strip_prefix("bytes=")
        .ok_or(RangeError::Malformed)?;
    if spec.contains(',') {
        return Err(RangeError::Malformed);
    }
    let (start, end) = spec.split_once('-').ok_or(RangeError::Malformed)?;
    let number = |s: &str| s.trim().parse::<u64>().map_err(|_| RangeError::Malformed);
    let (first, last) = match (start.trim().is_empty(), end.trim().is_empty()) {
        (true, true) => return Err(RangeError::Malformed),
        (true, false) => {
            let suffix = number(end)?;
            if suffix == 0 || size == 0 {
                return Err(RangeError::Unsatisfiable);
            }
            (size.saturating_sub(suffix), size - 1)
        }
        (false, true) => (number(start)?, size.saturating_sub(1)),
        (false, false) => (number(start)?, number(end)?.min(size.saturating_sub(1))),
    };
    if first >= size || first > last {
        return Err(RangeError::Unsatisfiable);
    }
    Ok((first, last))
}

/// Maps a request path to a file under `root`, or `None` if it would leave
/// it. `%XX` escapes are decoded; `..`, `.` and hidden segments are refused.
pub fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(url_path.split('?').next()?)?;
    let mut out = root.to_path_buf();
    for component in Path::new(decoded.trim_start_matches('/')).components() {
        match component {
            Component::Normal(part) if !part.to_string_lossy().starts_with('.') => out.push(part),
            _ => return None,
        }
    }
    (out != root).then_some(out)
}

/// Decodes `%XX` escapes; `None` for an escape that is not two hex
/// digits (which the crate would keep as it is), text that is not UTF-8,
/// or a NUL.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let well_formed = bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|pair| pair.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(s).decode_utf8().ok()?;
    (!decoded.contains('\0')).then(|| decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_as_rfc_9110_says() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Ok((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Ok((90, 99)));
        assert_eq!(parse_range("bytes=95-200", 100), Ok((95, 99)));
        assert_eq!(
            parse_range("bytes=100-", 100),
            Err(RangeError::Unsatisfiable)
        );
        assert_eq!(
            parse_range("bytes=5-4", 100),
            Err(RangeError::Unsatisfiable)
        );
        assert_eq!(
            parse_range("bytes=0-1,5-6", 100),
            Err(RangeError::Malformed)
        );
        assert_eq!(parse_range("items=0-1", 100), Err(RangeError::Malformed));
        assert_eq!(parse_range("bytes=-", 100), Err(RangeError::Malformed));
        assert_eq!(parse_range("bytes=a-b", 100), Err(RangeError::Malformed));
    }

    #[test]
    fn paths_never_leave_the_root() {
        let root = Path::new("/srv/pkgs");
        assert_eq!(
            resolve(root, "/a/b.bin"),
            Some(PathBuf::from("/srv/pkgs/a/b.bin"))
        );
        assert_eq!(
            resolve(root, "/my%20pkg.bin"),
            Some(PathBuf::from("/srv/pkgs/my pkg.bin"))
        );
        for bad in [
            "/../etc/passwd",
            "/a/../../x",
            "/%2e%2e/x",
            "/.hidden",
            "/",
            "/a%00b",
            "/%zz",
            "/%+2e%+2e/x",
            "/a%2",
        ] {
            assert_eq!(resolve(root, bad), None, "{bad}");
        }
    }
}
