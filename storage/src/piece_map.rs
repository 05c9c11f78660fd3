//! A have-map: one bit per piece of a content, set when the piece is held.
//!
//! The same bitmap is the client's durable record of what it stores and the
//! server's record of what each client holds, so 100k clients holding a
//! 1 GiB content (1024 pieces) cost 128 bytes each.

use serde::de::{Error as _, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// A fixed-length bitmap of pieces.
///
/// Decoding checks what [`PieceMap::from_raw`] checks, so a map from a peer
/// or a stored record always fits its piece count; and it takes the bytes
/// as bytes, so a length prefix that lies makes no allocation larger than
/// the bytes actually there (serde's generic `Vec` would reserve up to
/// 1 MiB on the prefix's word, even inside a 60 KiB datagram).
#[derive(Clone, PartialEq, Eq, Serialize, Default)]
pub struct PieceMap {
    len: u32,
    bits: Vec<u8>,
}

impl<'de> Deserialize<'de> for PieceMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            len: u32,
            bits: Bits,
        }
        let raw = Raw::deserialize(deserializer)?;
        PieceMap::from_raw(raw.len, raw.bits.0).map_err(D::Error::custom)
    }
}

/// A map's bytes, read as bytes (postcard: a length and the bytes; JSON:
/// an array of numbers).
struct Bits(Vec<u8>);

impl<'de> Deserialize<'de> for Bits {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BitsVisitor;
        impl<'de> Visitor<'de> for BitsVisitor {
            type Value = Bits;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("the bytes of a have-map")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bits, E> {
                Ok(Bits(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Bits, E> {
                Ok(Bits(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bits, A::Error> {
                // Grow as bytes arrive; trust no announced length.
                let mut bits = Vec::new();
                while let Some(byte) = seq.next_element()? {
                    bits.push(byte);
                }
                Ok(Bits(bits))
            }
        }
        deserializer.deserialize_bytes(BitsVisitor)
    }
}

/// A bitmap whose byte length does not fit its piece count.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("have-map of {got} bytes does not fit {len} pieces")]
pub struct BadPieceMap {
    /// Pieces expected.
    pub len: u32,
    /// Bytes received.
    pub got: usize,
}

impl PieceMap {
    /// An empty map of `len` pieces.
    pub fn new(len: u32) -> Self {
        PieceMap {
            len,
            bits: vec![0; (len as usize).div_ceil(8)],
        }
    }

    /// A map with every piece set.
    pub fn full(len: u32) -> Self {
        let mut map = Self::new(len);
        for i in 0..len {
            map.set(i);
        }
        map
    }

    /// Rebuilds a map from its raw bytes, refusing a wrong length or stray
    /// bits past the end.
    pub fn from_raw(len: u32, bits: Vec<u8>) -> Result<Self, BadPieceMap> {
        let bad = BadPieceMap {
            len,
            got: bits.len(),
        };
        if bits.len() != (len as usize).div_ceil(8) {
            return Err(bad);
        }
        let tail = len % 8;
        if tail != 0 && bits.last().is_some_and(|last| last >> tail != 0) {
            return Err(bad);
        }
        Ok(PieceMap { len, bits })
    }

    /// The raw bytes, piece 0 in the lowest bit of byte 0.
    pub fn raw(&self) -> &[u8] {
        &self.bits
    }

    /// Number of pieces the map covers.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// True if the map covers no pieces.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True if piece `i` is set. Out of range is never set.
    pub fn get(&self, i: u32) -> bool {
        i < self.len && self.bits[(i / 8) as usize] & (1 << (i % 8)) != 0
    }

    /// Sets piece `i`; returns true if it was not set before.
    ///
    /// # Panics
    /// If `i` is out of range: callers check indices against the manifest.
    pub fn set(&mut self, i: u32) -> bool {
        assert!(i < self.len, "piece {i} out of range {}", self.len);
        let byte = &mut self.bits[(i / 8) as usize];
        let mask = 1 << (i % 8);
        let was = *byte & mask != 0;
        *byte |= mask;
        !was
    }

    /// Clears piece `i`.
    pub fn clear(&mut self, i: u32) {
        if i < self.len {
            self.bits[(i / 8) as usize] &= !(1 << (i % 8));
        }
    }

    /// Number of pieces set.
    pub fn count(&self) -> u32 {
        self.bits.iter().map(|b| b.count_ones()).sum()
    }

    /// True if any piece is set (cheaper than counting them).
    pub fn holds_any(&self) -> bool {
        // A fold with no early exit: the compiler ORs the bytes a vector
        // at a time, where `any` went byte by byte.
        self.bits.iter().fold(0, |acc, b| acc | b) != 0
    }

    /// True if every piece is set.
    pub fn is_complete(&self) -> bool {
        self.count() == self.len
    }

    /// True if this map holds a piece `other` lacks (a map of another
    /// length counts as lacking everything).
    pub fn holds_any_missing_from(&self, other: &PieceMap) -> bool {
        if other.len != self.len {
            return self.count() > 0;
        }
        self.bits
            .iter()
            .zip(&other.bits)
            .fold(0, |acc, (mine, theirs)| acc | (mine & !theirs))
            != 0
    }

    /// Sets every piece `other` holds (a map of another length adds
    /// nothing: its indices would mean other pieces).
    pub fn add_all_of(&mut self, other: &PieceMap) {
        if other.len == self.len {
            for (mine, theirs) in self.bits.iter_mut().zip(&other.bits) {
                *mine |= theirs;
            }
        }
    }

    /// Indices of set pieces, ascending.
    pub fn iter_set(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).filter(|&i| self.get(i))
    }

    /// Indices of missing pieces, ascending.
    pub fn iter_missing(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).filter(|&i| !self.get(i))
    }
}

impl std::fmt::Debug for PieceMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PieceMap({}/{})", self.count(), self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_count_and_missing() {
        let mut m = PieceMap::new(10);
        assert!(m.set(3));
        assert!(!m.set(3));
        m.set(9);
        assert!(m.get(3) && m.get(9) && !m.get(4) && !m.get(10));
        assert_eq!(m.count(), 2);
        assert_eq!(m.iter_set().collect::<Vec<_>>(), vec![3, 9]);
        assert_eq!(m.iter_missing().count(), 8);
        m.clear(3);
        assert_eq!(m.count(), 1);
        assert!(PieceMap::full(10).is_complete());
    }

    #[test]
    fn a_map_adds_to_another_only_what_it_lacks() {
        let mut covered = PieceMap::new(20);
        let mut have = PieceMap::new(20);
        assert!(!have.holds_any());
        assert!(!have.holds_any_missing_from(&covered), "nothing to add");
        have.set(3);
        have.set(17);
        assert!(have.holds_any());
        assert!(have.holds_any_missing_from(&covered));
        covered.add_all_of(&have);
        assert_eq!(covered.iter_set().collect::<Vec<_>>(), vec![3, 17]);
        assert!(!have.holds_any_missing_from(&covered), "all covered now");
        have.set(18);
        assert!(have.holds_any_missing_from(&covered));
        // Another length: its indices mean other pieces.
        let other = PieceMap::full(8);
        covered.add_all_of(&other);
        assert_eq!(covered.count(), 2);
        assert!(other.holds_any_missing_from(&covered));
    }

    #[test]
    fn decoding_checks_the_length_and_trusts_no_length_prefix() {
        let mut m = PieceMap::new(20);
        m.set(19);
        let bytes = postcard::to_stdvec(&m).unwrap();
        assert_eq!(postcard::from_bytes::<PieceMap>(&bytes).unwrap(), m);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<PieceMap>(&json).unwrap(), m);
        // 20 pieces with 1 byte of bits: refused, not kept to panic later.
        let short = postcard::to_stdvec(&(20u32, vec![0u8])).unwrap();
        assert!(postcard::from_bytes::<PieceMap>(&short).is_err());
        let err = serde_json::from_str::<PieceMap>(r#"{"len":20,"bits":[0]}"#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("have-map of 1 bytes does not fit 20 pieces"),
            "{err}"
        );
        // A length prefix of ~4 GiB over 3 bytes: an error, not a reserve.
        let lying = [20, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3];
        assert!(postcard::from_bytes::<PieceMap>(&lying).is_err());
    }

    #[test]
    fn raw_round_trip_and_refusals() {
        let m = PieceMap::full(10);
        assert_eq!(PieceMap::from_raw(10, m.raw().to_vec()).unwrap(), m);
        assert_eq!(
            PieceMap::from_raw(10, vec![0; 3]),
            Err(BadPieceMap { len: 10, got: 3 })
        );
        // A stray bit beyond piece 9 is refused, not silently kept.
        assert!(PieceMap::from_raw(10, vec![0xff, 0xff]).is_err());
    }
}
