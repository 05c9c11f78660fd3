//! Subnet discovery: "who holds content X, and which pieces?" asked by UDP
//! broadcast, so an office keeps sharing when the server is unreachable.
//! This module holds the datagrams and the rules; the runtime's discovery
//! actor does the sockets.
//!
//! - A request is broadcast on the client's subnet; it names the content
//!   and where to send replies (the asker's own unicast socket, since many
//!   clients share the broadcast port).
//! - A client that holds any piece of the content replies with its
//!   foreground address and have-map.
//! - Office types (reference manual): VPN clients broadcast but never
//!   reply (they never serve); WiFi clients reply but never broadcast.
//! - Only peers of the asker's own subnet count: a datagram from another
//!   subnet (one broadcast domain can carry several, as loopback does) is
//!   ignored.
//!
//! Datagrams are one wire frame each (version, length, postcard) and are
//! refused over [`MAX_DATAGRAM`].
//!
//! Under the cluster PKI a reply carries its sender's signature (and
//! certificate) over [`Datagram::signed_bytes`], and an asker takes only
//! replies a member of the cluster signed for its own question (the nonce
//! is signed too, so a reply cannot be replayed to another question).

use std::net::{IpAddr, SocketAddr};

use branchline_storage::publication::Signature;
use branchline_storage::{ContentId, NodeId, PieceMap};
use serde::{Deserialize, Serialize};

use crate::topology::{AddressBlock, OfficeKind};
use crate::wire::{FrameError, decode_frame, encode_frame};

/// Largest discovery datagram sent or accepted.
pub const MAX_DATAGRAM: usize = 60 * 1024;

/// A discovery datagram.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Datagram {
    /// Who holds `content`?
    Request {
        /// Tells this question's replies from others'.
        nonce: u64,
        /// The asker.
        from: NodeId,
        /// The content.
        content: ContentId,
        /// Where replies go.
        reply_to: SocketAddr,
    },
    /// I hold these pieces of `content`.
    Reply {
        /// The request's nonce.
        nonce: u64,
        /// The holder.
        from: NodeId,
        /// Its foreground endpoint.
        addr: SocketAddr,
        /// The content.
        content: ContentId,
        /// What it holds.
        have: PieceMap,
        /// The holder's signature over [`Datagram::signed_bytes`] (with the
        /// cluster PKI).
        signature: Option<Signature>,
    },
}

/// Domain separation for signed replies.
const SIGNED_REPLY_PREFIX: &[u8] = b"branchline discovery reply v1\0";

impl Datagram {
    /// The datagram's bytes, or `None` if they would exceed
    /// [`MAX_DATAGRAM`] (a have-map of a content too large for one
    /// datagram).
    pub fn encode(&self) -> Option<Vec<u8>> {
        let bytes = encode_frame(self);
        (bytes.len() <= MAX_DATAGRAM).then_some(bytes)
    }

    /// The bytes a reply's signature covers: everything in it but the
    /// signature. `None` for a request (requests are not signed).
    pub fn signed_bytes(&self) -> Option<Vec<u8>> {
        let Datagram::Reply {
            nonce,
            from,
            addr,
            content,
            have,
            ..
        } = self
        else {
            return None;
        };
        let mut out = SIGNED_REPLY_PREFIX.to_vec();
        let body = postcard::to_stdvec(&(nonce, from, addr, content, have))
            .expect("a reply always serialises");
        out.extend(body);
        Some(out)
    }

    /// The reply with `sign`'s signature over its
    /// [`Datagram::signed_bytes`]; a request comes back as it was.
    pub fn signed(mut self, sign: impl FnOnce(&[u8]) -> Option<Signature>) -> Self {
        if let Some(message) = self.signed_bytes()
            && let Datagram::Reply { signature, .. } = &mut self
        {
            *signature = sign(&message);
        }
        self
    }

    /// Parses a datagram; junk and oversized frames are errors.
    pub fn decode(bytes: &[u8]) -> Result<Self, FrameError> {
        let (datagram, used) = decode_frame(bytes, MAX_DATAGRAM)?;
        if used != bytes.len() {
            return Err(FrameError::Decode("trailing bytes after the frame".into()));
        }
        Ok(datagram)
    }
}

/// Whether a client of `kind` broadcasts requests.
pub fn may_ask(kind: OfficeKind) -> bool {
    kind.broadcasts()
}

/// Whether a client of `kind` holding `have` answers a request.
pub fn should_answer(kind: OfficeKind, have: &PieceMap) -> bool {
    kind.serves() && have.count() > 0
}

/// Whether a datagram from `from` comes from the subnet of the client at
/// `me` (its /24, or /64 for IPv6).
pub fn same_subnet(me: IpAddr, from: IpAddr) -> bool {
    AddressBlock::around(me).contains(from)
}

/// Where to broadcast from a client at `me`: its /24's broadcast address,
/// or, on loopback (one broadcast domain for all of 127/8),
/// 127.255.255.255.
pub fn broadcast_address(me: IpAddr) -> Option<IpAddr> {
    match me {
        IpAddr::V4(v4) if v4.is_loopback() => Some(IpAddr::from([127, 255, 255, 255])),
        IpAddr::V4(_) => Some(AddressBlock::around(me).last()),
        IpAddr::V6(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn datagrams_round_trip_and_junk_is_refused() {
        let reply = Datagram::Reply {
            nonce: 7,
            from: NodeId([1; 16]),
            addr: "127.9.1.11:34760".parse().unwrap(),
            content: ContentId::of(b"x"),
            have: PieceMap::full(10),
            signature: None,
        };
        let bytes = reply.encode().unwrap();
        assert_eq!(Datagram::decode(&bytes).unwrap(), reply);
        // The signature covers everything but itself, the nonce included.
        let signed = Datagram::Reply {
            nonce: 7,
            from: NodeId([1; 16]),
            addr: "127.9.1.11:34760".parse().unwrap(),
            content: ContentId::of(b"x"),
            have: PieceMap::full(10),
            signature: Some(Signature {
                scheme: 0x0403,
                bytes: vec![1; 70],
                certificate: vec![2; 500],
            }),
        };
        assert_eq!(signed.signed_bytes(), reply.signed_bytes());
        assert_eq!(Datagram::decode(&signed.encode().unwrap()).unwrap(), signed);
        let replayed = Datagram::Reply {
            nonce: 8,
            from: NodeId([1; 16]),
            addr: "127.9.1.11:34760".parse().unwrap(),
            content: ContentId::of(b"x"),
            have: PieceMap::full(10),
            signature: None,
        };
        assert_ne!(replayed.signed_bytes(), reply.signed_bytes());
        assert!(
            Datagram::decode(&bytes[..bytes.len() - 1]).is_err(),
            "truncated"
        );
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Datagram::decode(&longer).is_err(), "trailing bytes");
        assert!(
            Datagram::decode(b"\x01\xff\xff\xff\xffjunk").is_err(),
            "over the cap"
        );
        assert!(Datagram::decode(b"").is_err());
    }

    #[test]
    fn a_have_map_too_big_for_one_datagram_is_not_sent() {
        let huge = Datagram::Reply {
            nonce: 7,
            from: NodeId([1; 16]),
            addr: "127.9.1.11:34760".parse().unwrap(),
            content: ContentId::of(b"x"),
            have: PieceMap::full(600_000),
            signature: None,
        };
        assert!(huge.encode().is_none());
    }

    #[test]
    fn office_types_decide_who_asks_and_who_answers() {
        let some = PieceMap::full(2);
        assert!(may_ask(OfficeKind::Default) && may_ask(OfficeKind::Vpn));
        assert!(!may_ask(OfficeKind::Wifi), "WiFi clients never broadcast");
        assert!(should_answer(OfficeKind::Wifi, &some));
        assert!(
            !should_answer(OfficeKind::Vpn, &some),
            "VPN clients never serve"
        );
        assert!(
            !should_answer(OfficeKind::Default, &PieceMap::new(2)),
            "holds nothing"
        );
    }

    #[test]
    fn only_the_askers_subnet_counts_and_broadcast_goes_to_the_subnet() {
        assert!(same_subnet(ip("10.1.2.3"), ip("10.1.2.200")));
        assert!(!same_subnet(ip("10.1.2.3"), ip("10.1.3.3")));
        assert_eq!(
            broadcast_address(ip("198.18.1.11")),
            Some(ip("198.18.1.255"))
        );
        assert_eq!(
            broadcast_address(ip("127.35.1.11")),
            Some(ip("127.255.255.255"))
        );
    }
}
