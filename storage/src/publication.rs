//! What the server vouches for about a published content, beyond its
//! manifest (which its id already pins): whether peers may share it. The
//! server signs it with the key of its cluster certificate, and a client
//! under the cluster PKI accepts a manifest only with a publication the
//! server signed, from the server or relayed by a peer. A peer can relay
//! a publication but not change it.
//!
//! The data and the exact bytes signed live here; signing and checking
//! (rustls, the cluster CA) are the runtime's.

use serde::{Deserialize, Serialize};

use crate::content::ContentId;

/// Domain separation: these bytes start every signed publication, so a
/// signature made for anything else never verifies as one.
const SIGNED_PREFIX: &[u8] = b"branchline publication v1\0";

/// What the server says about a content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    /// The content.
    pub content: ContentId,
    /// Never shared by peers: every client fetches it from the origin.
    pub confidential: bool,
}

impl Publication {
    /// The exact bytes the server signs.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = SIGNED_PREFIX.to_vec();
        out.extend(postcard::to_stdvec(self).expect("a publication always serialises"));
        out
    }
}

/// A server's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The TLS signature scheme (its IANA code), such as ECDSA P-256 SHA-256.
    pub scheme: u16,
    /// The signature.
    pub bytes: Vec<u8>,
    /// The signer's certificate (DER), which must chain to the cluster CA
    /// and name the server role.
    pub certificate: Vec<u8>,
}

/// A publication with the server's signature; without one when the server
/// runs without the cluster PKI (then nothing is authenticated anyway).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedPublication {
    /// What is vouched for.
    pub publication: Publication,
    /// The server's signature over [`Publication::signed_bytes`].
    pub signature: Option<Signature>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::Hash;

    #[test]
    fn the_signed_bytes_differ_by_content_and_by_confidentiality() {
        let a = Publication {
            content: Hash([1; 32]),
            confidential: false,
        };
        let b = Publication {
            confidential: true,
            ..a
        };
        let c = Publication {
            content: Hash([2; 32]),
            ..a
        };
        assert!(a.signed_bytes().starts_with(SIGNED_PREFIX));
        assert_ne!(a.signed_bytes(), b.signed_bytes());
        assert_ne!(a.signed_bytes(), c.signed_bytes());
    }
}
