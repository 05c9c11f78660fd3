//! A join token's text: `BL1-<secret>-<CA fingerprint>[-<server address>]`,
//! the secret as 32 hex digits (128 bits), the fingerprint as the 64 hex
//! digits of the SHA-256 of the CA certificate's DER. Hex and dashes only,
//! so it survives shells, scripts and copy-paste.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use branchline_storage::hex_id::{hex, parse_hex};
use sha2::{Digest, Sha256};

/// The text every token starts with (its format's version).
const PREFIX: &str = "BL1";

/// A join token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinToken {
    /// What the joiner proves it knows.
    pub secret: [u8; 16],
    /// SHA-256 of the cluster CA's certificate (DER): the joiner accepts
    /// only a server whose certificate chains to this CA.
    pub ca: [u8; 32],
    /// Where the server's control endpoint is, if the server knows an
    /// address clients can reach.
    pub server: Option<SocketAddr>,
}

/// Why a token's text was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "not a join token ({0}); it looks like BL1-<32 hex digits>-<64 hex digits>[-<address>], as `branchline token create` prints it"
)]
pub struct BadToken(&'static str);

impl JoinToken {
    /// The key the server files the token under: a hash of the secret, so
    /// the store never holds the secret itself.
    pub fn key(secret: &[u8; 16]) -> [u8; 16] {
        let digest = Sha256::digest(secret);
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        key
    }
}

/// SHA-256 of a certificate's DER: what a token pins.
pub fn fingerprint(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

impl fmt::Display for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}-{}-{}", hex(&self.secret), hex(&self.ca))?;
        match self.server {
            Some(server) => write!(f, "-{server}"),
            None => Ok(()),
        }
    }
}

impl FromStr for JoinToken {
    type Err = BadToken;

    fn from_str(text: &str) -> Result<Self, BadToken> {
        let mut parts = text.trim().splitn(4, '-');
        if parts.next() != Some(PREFIX) {
            return Err(BadToken("it does not start with BL1-"));
        }
        let secret = parts
            .next()
            .and_then(parse_hex::<16>)
            .ok_or(BadToken("its secret is not 32 hex digits"))?;
        let ca = parts
            .next()
            .and_then(parse_hex::<32>)
            .ok_or(BadToken("its CA fingerprint is not 64 hex digits"))?;
        let server = match parts.next() {
            None => None,
            Some(addr) => Some(
                addr.parse()
                    .map_err(|_| BadToken("its server address is not an address and port"))?,
            ),
        };
        Ok(JoinToken { secret, ca, server })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_prints_and_parses_back_with_or_without_an_address() {
        for server in [
            None,
            Some("198.18.0.1:34323".parse().unwrap()),
            Some("[::1]:1".parse().unwrap()),
        ] {
            let token = JoinToken {
                secret: [7; 16],
                ca: [0xab; 32],
                server,
            };
            let text = token.to_string();
            assert!(text.starts_with("BL1-07070707"));
            assert_eq!(text.parse::<JoinToken>().unwrap(), token);
        }
    }

    #[test]
    fn bad_tokens_are_named() {
        let ca = "ab".repeat(32);
        let secret = "07".repeat(16);
        for (text, why) in [
            ("", "it does not start with BL1-"),
            ("BL2-x", "it does not start with BL1-"),
            ("BL1-zz", "its secret is not 32 hex digits"),
            (
                &format!("BL1-{secret}"),
                "its CA fingerprint is not 64 hex digits",
            ),
            (
                &format!("BL1-{secret}-{}", &ca[..60]),
                "its CA fingerprint is not 64 hex digits",
            ),
            (
                &format!("BL1-{secret}-{ca}-nowhere"),
                "its server address is not an address and port",
            ),
        ] {
            let err = text.parse::<JoinToken>().unwrap_err();
            assert_eq!(err, BadToken(why), "{text}");
            assert!(err.to_string().contains("branchline token create"));
        }
    }
}
