//! The content model: a package cut into fixed-size pieces, each with a
//! BLAKE3 hash, described by a canonical manifest whose own BLAKE3 hash is the
//! content id.
//!
//! The manifest is encoded with postcard, which is deterministic for a given
//! struct: the same manifest always gives the same bytes and so the same id.
//! A receiver recomputes the id from the bytes it was given, so a manifest
//! cannot be swapped under an id.

use std::fmt;
use std::io::Read;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Smallest piece size accepted at publish (16 KiB).
pub const MIN_PIECE_SIZE: u32 = 16 * 1024;
/// Largest piece size accepted at publish (16 MiB); bigger pieces make
/// retries and memory per request too coarse.
pub const MAX_PIECE_SIZE: u32 = 16 * 1024 * 1024;
/// Default piece size (1 MiB).
pub const DEFAULT_PIECE_SIZE: u32 = 1024 * 1024;
/// Largest manifest accepted from the wire or disk (a 1 TiB package with 1 MiB
/// pieces has 1 Mi hashes, 32 MiB of manifest).
pub const MAX_MANIFEST_BYTES: usize = 40 * 1024 * 1024;
/// Longest name a manifest may carry.
pub const MAX_NAME_LEN: usize = 255;

/// A BLAKE3 digest: of a piece, or of a manifest (then it is a content id).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; 32]);

crate::hex_id::hex_id_serde!(Hash, 32);

impl Hash {
    /// Hashes `bytes` with BLAKE3.
    pub fn of(bytes: &[u8]) -> Self {
        Hash(*blake3::hash(bytes).as_bytes())
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Identifies a content: the BLAKE3 hash of its canonical manifest.
pub type ContentId = Hash;

/// A content id (or any hash) that could not be parsed from text.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a content id: expected 64 hex characters")]
pub struct BadHashText(pub String);

impl FromStr for Hash {
    type Err = BadHashText;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::hex_id::parse_hex::<32>(s)
            .map(Hash)
            .ok_or_else(|| BadHashText(s.chars().take(80).collect()))
    }
}

pub use crate::hex_id::hex;

/// Why a manifest or a piece was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContentError {
    /// The piece size is outside the accepted range.
    #[error("piece size {0} is out of range ({MIN_PIECE_SIZE}..={MAX_PIECE_SIZE} bytes)")]
    PieceSize(u32),
    /// The number of piece hashes does not match size / piece size.
    #[error("manifest lists {listed} piece hashes but a {size}-byte content has {expected} pieces")]
    PieceCount {
        /// Hashes in the manifest.
        listed: usize,
        /// Pieces the size implies.
        expected: u64,
        /// Content size in bytes.
        size: u64,
    },
    /// The name is too long or contains a path separator or control character.
    #[error("manifest name is not a plain file name of at most {MAX_NAME_LEN} bytes")]
    BadName,
    /// The manifest bytes do not decode.
    #[error("manifest does not decode: {0}")]
    Decode(String),
    /// The manifest is larger than [`MAX_MANIFEST_BYTES`].
    #[error("manifest of {0} bytes is over the {MAX_MANIFEST_BYTES}-byte limit")]
    TooLarge(usize),
    /// A piece index beyond the last piece.
    #[error("piece {index} does not exist (content has {count} pieces)")]
    NoSuchPiece {
        /// The index asked for.
        index: u32,
        /// Pieces in the content.
        count: u32,
    },
    /// A piece's bytes do not hash to the manifest's hash.
    #[error("piece {index} hash mismatch: expected {expected}, got {got}")]
    PieceHashMismatch {
        /// The piece index.
        index: u32,
        /// The hash in the manifest.
        expected: Hash,
        /// The hash of the bytes received.
        got: Hash,
    },
    /// A piece has the wrong length.
    #[error("piece {index} has {got} bytes, expected {expected}")]
    PieceLength {
        /// The piece index.
        index: u32,
        /// The length the manifest implies.
        expected: u64,
        /// The length received.
        got: u64,
    },
}

/// Describes one content: its name, size, piece size and every piece's hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// A plain file name, for display and as the default output name.
    pub name: String,
    /// Total size in bytes.
    pub size: u64,
    /// Size of every piece but the last, in bytes.
    pub piece_size: u32,
    /// BLAKE3 of each piece, in order.
    pub piece_hashes: Vec<Hash>,
}

impl Manifest {
    /// Checks the manifest's internal consistency.
    pub fn validate(&self) -> Result<(), ContentError> {
        if !(MIN_PIECE_SIZE..=MAX_PIECE_SIZE).contains(&self.piece_size) {
            return Err(ContentError::PieceSize(self.piece_size));
        }
        let expected = self.size.div_ceil(u64::from(self.piece_size));
        if self.piece_hashes.len() as u64 != expected || expected > u64::from(u32::MAX) {
            return Err(ContentError::PieceCount {
                listed: self.piece_hashes.len(),
                expected,
                size: self.size,
            });
        }
        let bad_char = |c: char| c == '/' || c == '\\' || c.is_control();
        if self.name.is_empty()
            || self.name.len() > MAX_NAME_LEN
            || self.name.chars().any(bad_char)
            || self.name == "."
            || self.name == ".."
        {
            return Err(ContentError::BadName);
        }
        Ok(())
    }

    /// The canonical encoding: what is hashed into the content id and sent on
    /// the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("a manifest always serialises")
    }

    /// Decodes and validates canonical bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ContentError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ContentError::TooLarge(bytes.len()));
        }
        let manifest: Manifest =
            postcard::from_bytes(bytes).map_err(|e| ContentError::Decode(e.to_string()))?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// The content id: BLAKE3 of the canonical encoding.
    pub fn content_id(&self) -> ContentId {
        Hash::of(&self.to_bytes())
    }

    /// Number of pieces.
    pub fn piece_count(&self) -> u32 {
        u32::try_from(self.piece_hashes.len()).expect("validated piece count fits u32")
    }

    /// Byte offset of a piece in the content.
    pub fn piece_offset(&self, index: u32) -> u64 {
        u64::from(index) * u64::from(self.piece_size)
    }

    /// Length of a piece in bytes (the last one may be shorter).
    pub fn piece_len(&self, index: u32) -> u64 {
        let start = self.piece_offset(index);
        (self.size - start).min(u64::from(self.piece_size))
    }

    /// Checks that `bytes` are piece `index`: right length, right hash.
    pub fn verify_piece(&self, index: u32, bytes: &[u8]) -> Result<(), ContentError> {
        let expected = *self
            .piece_hashes
            .get(index as usize)
            .ok_or(ContentError::NoSuchPiece {
                index,
                count: self.piece_count(),
            })?;
        let want_len = self.piece_len(index);
        if bytes.len() as u64 != want_len {
            return Err(ContentError::PieceLength {
                index,
                expected: want_len,
                got: bytes.len() as u64,
            });
        }
        let got = Hash::of(bytes);
        if got != expected {
            return Err(ContentError::PieceHashMismatch {
                index,
                expected,
                got,
            });
        }
        Ok(())
    }

    /// Builds a manifest by reading `reader` as a stream, one piece at a time,
    /// never holding more than one piece in memory. `progress` is called with
    /// the bytes hashed so far after each piece.
    pub fn from_reader(
        name: &str,
        mut reader: impl Read,
        piece_size: u32,
        mut progress: impl FnMut(u64),
    ) -> Result<Self, ManifestBuildError> {
        if !(MIN_PIECE_SIZE..=MAX_PIECE_SIZE).contains(&piece_size) {
            return Err(ContentError::PieceSize(piece_size).into());
        }
        let mut buf = vec![0u8; piece_size as usize];
        let mut hashes = Vec::new();
        let mut size = 0u64;
        loop {
            let filled = read_full(&mut reader, &mut buf)?;
            if filled == 0 {
                break;
            }
            hashes.push(Hash::of(&buf[..filled]));
            size += filled as u64;
            progress(size);
            if filled < buf.len() {
                break;
            }
        }
        let manifest = Manifest {
            name: name.to_owned(),
            size,
            piece_size,
            piece_hashes: hashes,
        };
        manifest.validate()?;
        Ok(manifest)
    }
}

/// Why a manifest could not be built from a file.
#[derive(Debug, thiserror::Error)]
pub enum ManifestBuildError {
    /// Reading the input failed.
    #[error("reading the package failed: {0}")]
    Io(#[from] std::io::Error),
    /// The result is not a valid manifest.
    #[error(transparent)]
    Content(#[from] ContentError),
}

/// Reads until `buf` is full or the reader ends; returns the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)] // test data sizes are small
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn pieces_cover_the_content_and_the_last_is_short() {
        let data = sample(40 * 1024 + 5);
        let m = Manifest::from_reader("pkg.bin", &data[..], MIN_PIECE_SIZE, |_| {}).unwrap();
        assert_eq!(m.piece_count(), 3);
        assert_eq!(m.piece_len(2), 40 * 1024 + 5 - 32 * 1024);
        for i in 0..3 {
            let start = m.piece_offset(i) as usize;
            let end = start + m.piece_len(i) as usize;
            m.verify_piece(i, &data[start..end]).unwrap();
        }
    }

    #[test]
    fn the_id_is_stable_and_survives_a_round_trip() {
        let m = Manifest::from_reader("a", &sample(100_000)[..], MIN_PIECE_SIZE, |_| {}).unwrap();
        let back = Manifest::from_bytes(&m.to_bytes()).unwrap();
        assert_eq!(back.content_id(), m.content_id());
        let text = m.content_id().to_hex();
        assert_eq!(text.parse::<ContentId>().unwrap(), m.content_id());
    }

    #[test]
    fn a_flipped_byte_is_a_hash_mismatch() {
        let mut data = sample(MIN_PIECE_SIZE as usize);
        let m = Manifest::from_reader("a", &data[..], MIN_PIECE_SIZE, |_| {}).unwrap();
        data[100] ^= 1;
        let err = m.verify_piece(0, &data).unwrap_err();
        assert!(
            matches!(err, ContentError::PieceHashMismatch { index: 0, .. }),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("piece 0 hash mismatch: expected ")
        );
    }

    #[test]
    fn bad_manifests_are_refused_with_their_reason() {
        let good = Manifest::from_reader("a", &sample(50_000)[..], MIN_PIECE_SIZE, |_| {}).unwrap();
        let mut short = good.clone();
        short.piece_hashes.pop();
        assert!(matches!(
            short.validate(),
            Err(ContentError::PieceCount { .. })
        ));
        let mut path = good.clone();
        path.name = "../etc/passwd".into();
        assert_eq!(path.validate(), Err(ContentError::BadName));
        let mut tiny = good;
        tiny.piece_size = 10;
        assert_eq!(tiny.validate(), Err(ContentError::PieceSize(10)));
        assert!(matches!(
            Manifest::from_bytes(&[0xff; 7]),
            Err(ContentError::Decode(_))
        ));
    }

    #[test]
    fn bad_id_text_names_the_problem() {
        let err = "xyz".parse::<ContentId>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`xyz` is not a content id: expected 64 hex characters"
        );
        assert!("g".repeat(64).parse::<ContentId>().is_err());
    }

    #[test]
    fn progress_reports_every_piece() {
        let mut seen = Vec::new();
        Manifest::from_reader("a", &sample(40_000)[..], MIN_PIECE_SIZE, |n| seen.push(n)).unwrap();
        assert_eq!(seen, vec![16_384, 32_768, 40_000]);
    }
}
