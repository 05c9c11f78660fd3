//! Fixed-size byte ids (content ids, node ids) as text: lower-case hex for
//! people, logs and JSON (`status --json`), raw bytes in compact formats
//! (postcard on the wire and in sled). Serde tells the two apart by
//! `is_human_readable`.

/// Lower-case hex of any byte string.
pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Parses exactly `2 * N` hex digits (either case, nothing else: no sign,
/// no space).
pub fn parse_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// Implements `Serialize` and `Deserialize` for a newtype over `[u8; N]`:
/// hex text when the format is human-readable, the raw array otherwise.
macro_rules! hex_id_serde {
    ($ty:ident, $n:literal) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(&$crate::hex_id::hex(&self.0))
                } else {
                    s.serialize_newtype_struct(stringify!($ty), &self.0)
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                #[derive(serde::Deserialize)]
                struct Raw([u8; $n]);
                if d.is_human_readable() {
                    let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                    $crate::hex_id::parse_hex::<$n>(&text)
                        .map($ty)
                        .ok_or_else(|| {
                            serde::de::Error::custom(concat!(
                                "expected ",
                                stringify!($n),
                                " bytes as hex"
                            ))
                        })
                } else {
                    Raw::deserialize(d).map(|raw| $ty(raw.0))
                }
            }
        }
    };
}

pub(crate) use hex_id_serde;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Hash, NodeId};

    #[test]
    fn hex_round_trips_and_refuses_bad_text() {
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(parse_hex::<3>("00AB10"), Some([0, 0xab, 0x10]));
        assert_eq!(parse_hex::<3>("00ab1"), None);
        assert_eq!(parse_hex::<2>("zz00"), None);
        // A sign is not a digit: `from_str_radix` took "+f" as 15, so two
        // texts named one id.
        assert_eq!(parse_hex::<2>("+f+f"), None);
        assert_eq!(parse_hex::<2>("0f0f"), Some([15, 15]));
    }

    #[test]
    fn ids_are_hex_in_json_and_raw_bytes_in_postcard() {
        let node = NodeId([7; 16]);
        let json = serde_json::to_string(&node).unwrap();
        assert_eq!(json, format!("\"{}\"", "07".repeat(16)));
        assert_eq!(serde_json::from_str::<NodeId>(&json).unwrap(), node);
        assert!(serde_json::from_str::<NodeId>("\"07\"").is_err());

        let hash = Hash([9; 32]);
        let bytes = postcard::to_stdvec(&hash).unwrap();
        assert_eq!(bytes, vec![9; 32], "postcard keeps the raw 32 bytes");
        assert_eq!(postcard::from_bytes::<Hash>(&bytes).unwrap(), hash);
    }
}
