//! Short-lived signed URLs for the embedded file storage: how someone
//! outside the cluster (an administrator's `curl`, a deployment tool with
//! no certificate) may fetch one published file until a deadline.
//!
//! A signed URL is the file's URL with `?expires=UNIX_SECONDS&sig=HEX`,
//! where `sig` is HMAC-SHA256, under the server's own key, of the path and
//! the expiry. Changing the path, the expiry or the signature refuses it;
//! so does a time past the expiry. Plain functions of their inputs: the
//! caller passes the time.

use ring::hmac;

/// Why a signed URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedUrlError {
    /// The query has no `expires` and `sig`, or they do not parse.
    #[error("no signature (a cluster certificate or a signed URL is needed)")]
    Missing,
    /// The signature does not match the path and expiry.
    #[error("the signature does not match")]
    Forged,
    /// The URL expired.
    #[error("the signed URL expired")]
    Expired,
}

/// The message signed for `path` until `expires`.
fn message(path: &str, expires: u64) -> Vec<u8> {
    format!("GET\n{path}\n{expires}").into_bytes()
}

/// The query that signs `path` (a URL path, as requested) until
/// `expires` (seconds since the epoch).
pub fn sign(key: &hmac::Key, path: &str, expires: u64) -> String {
    let tag = hmac::sign(key, &message(path, expires));
    format!(
        "expires={expires}&sig={}",
        branchline_storage::hex_id::hex(tag.as_ref())
    )
}

/// Checks the query of a request for `path` at `now` (seconds since the
/// epoch).
pub fn check(
    key: &hmac::Key,
    path: &str,
    query: Option<&str>,
    now: u64,
) -> Result<(), SignedUrlError> {
    let (mut expires, mut sig) = (None, None);
    for pair in query.unwrap_or("").split('&') {
        match pair.split_once('=') {
            Some(("expires", v)) => expires = v.parse::<u64>().ok(),
            Some(("sig", v)) => sig = branchline_storage::hex_id::parse_hex::<32>(v),
            _ => {}
        }
    }
    let (Some(expires), Some(sig)) = (expires, sig) else {
        return Err(SignedUrlError::Missing);
    };
    hmac::verify(key, &message(path, expires), &sig).map_err(|_| SignedUrlError::Forged)?;
    match now < expires {
        true => Ok(()),
        false => Err(SignedUrlError::Expired),
    }
}

/// A new random signing key's bytes.
pub fn new_key() -> Result<[u8; 32], String> {
    let mut key = [0u8; 32];
    getrandom::getrandom(&mut key).map_err(|e| format!("no random bytes: {e}"))?;
    Ok(key)
}

/// The signing key of these bytes.
pub fn key(bytes: &[u8; 32]) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_url_works_until_it_expires_and_any_change_refuses_it() {
        let k = key(&[9; 32]);
        let query = sign(&k, "/pkg.bin", 1_000);
        assert_eq!(check(&k, "/pkg.bin", Some(&query), 999), Ok(()));
        assert_eq!(
            check(&k, "/pkg.bin", Some(&query), 1_000),
            Err(SignedUrlError::Expired)
        );
        assert_eq!(
            check(&k, "/other.bin", Some(&query), 10),
            Err(SignedUrlError::Forged)
        );
        let later = query.replace("expires=1000", "expires=9999");
        assert_eq!(
            check(&k, "/pkg.bin", Some(&later), 10),
            Err(SignedUrlError::Forged)
        );
        assert_eq!(
            check(&key(&[8; 32]), "/pkg.bin", Some(&query), 10),
            Err(SignedUrlError::Forged),
            "another server's key"
        );
        for bad in [
            None,
            Some(""),
            Some("expires=5"),
            Some("sig=00"),
            Some("expires=x&sig=zz"),
        ] {
            assert_eq!(
                check(&k, "/pkg.bin", bad, 1),
                Err(SignedUrlError::Missing),
                "{bad:?}"
            );
        }
    }
}
