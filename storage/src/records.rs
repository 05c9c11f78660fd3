//! Small helpers to encode records kept in sled: a version byte, then
//! postcard. A record of another version or that does not decode is reported
//! as corrupt, never guessed at.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Version byte written in front of every record.
const RECORD_VERSION: u8 = 1;

/// A stored record that could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("stored record `{what}` is unreadable: {reason}")]
pub struct BadRecord {
    /// Which record (tree and key, for the log).
    pub what: String,
    /// Why it could not be decoded.
    pub reason: String,
}

/// Encodes `value` as a versioned record.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![RECORD_VERSION];
    out.extend(postcard::to_stdvec(value).expect("records always serialise"));
    out
}

/// Decodes a versioned record; `what` names it in the error.
pub fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    what: impl FnOnce() -> String,
) -> Result<T, BadRecord> {
    match bytes.split_first() {
        Some((&RECORD_VERSION, body)) => postcard::from_bytes(body).map_err(|e| BadRecord {
            what: what(),
            reason: e.to_string(),
        }),
        Some((v, _)) => Err(BadRecord {
            what: what(),
            reason: format!("unknown record version {v}"),
        }),
        None => Err(BadRecord {
            what: what(),
            reason: "empty record".into(),
        }),
    }
}

/// Milliseconds since the Unix epoch, the time stamps kept in records.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let bytes = encode(&(7u32, "x".to_string()));
        let back: (u32, String) = decode(&bytes, || "t".into()).unwrap();
        assert_eq!(back, (7, "x".into()));
        let err = decode::<u32>(&[9, 1], || "contents/abc".into()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "stored record `contents/abc` is unreadable: unknown record version 9"
        );
        assert!(decode::<u32>(&[], || "x".into()).is_err());
    }
}
