//! Address blocks: the subnets (`10.1.2.0/24`, `fd00::/64`) and ranges
//! (`10.1.2.10-10.1.2.99`) an office is made of, parsed from text, with
//! the questions office resolution asks of them: does a block hold an
//! address, how large is it, does it overlap another. Prefix arithmetic is
//! `ipnet`'s; a block is kept as its first and last address, so a range
//! and a subnet answer alike.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// A block of addresses of one family, as its first and last address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AddressBlock {
    first: IpAddr,
    last: IpAddr,
    /// The prefix length when the block was written as a CIDR subnet.
    prefix: Option<u8>,
}

/// Why a block's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadBlock {
    /// Not an address.
    #[error("`{0}` is not an IP address")]
    Address(String),
    /// A prefix length that is not a number or too long for the family.
    #[error("`{0}` has a bad prefix length (IPv4: 0-32, IPv6: 0-128)")]
    Prefix(String),
    /// Bits set past the prefix, as in `10.1.2.5/24`.
    #[error("`{text}` has host bits set; did you mean {network}?")]
    HostBits {
        /// The text.
        text: String,
        /// The subnet it probably meant.
        network: String,
    },
    /// A range whose ends are of different families.
    #[error("`{0}` mixes IPv4 and IPv6")]
    MixedFamilies(String),
    /// A range whose first address is after its last.
    #[error("`{0}` ends before it starts")]
    Backwards(String),
}

/// An address as a number, for sizes.
fn number(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

impl AddressBlock {
    /// The subnet `network/prefix`; host bits must be clear.
    pub fn subnet(network: IpAddr, prefix: u8) -> Result<Self, BadBlock> {
        let text = format!("{network}/{prefix}");
        let net = IpNet::new(network, prefix).map_err(|_| BadBlock::Prefix(text.clone()))?;
        let clear = net.trunc();
        if clear.addr() != network {
            return Err(BadBlock::HostBits {
                text,
                network: clear.to_string(),
            });
        }
        Ok(AddressBlock {
            first: network,
            last: net.broadcast(),
            prefix: Some(prefix),
        })
    }

    /// The /24 (IPv4) or /64 (IPv6) that holds `addr`: an automatic office.
    pub fn around(addr: IpAddr) -> Self {
        let prefix = if addr.is_ipv4() { 24 } else { 64 };
        let net = IpNet::new(addr, prefix)
            .expect("24 and 64 fit their families")
            .trunc();
        Self::subnet(net.addr(), prefix).expect("a truncated network is a valid subnet")
    }

    /// Its first address.
    pub fn first(&self) -> IpAddr {
        self.first
    }

    /// Its last address.
    pub fn last(&self) -> IpAddr {
        self.last
    }

    /// Whether `addr` is in the block.
    pub fn contains(&self, addr: IpAddr) -> bool {
        same_family(addr, self.first) && self.first <= addr && addr <= self.last
    }

    /// How many addresses the block holds, less one (so a whole IPv6 space
    /// fits): smaller is more specific.
    pub fn span(&self) -> u128 {
        number(self.last) - number(self.first)
    }

    /// Whether the two blocks share an address.
    pub fn overlaps(&self, other: &AddressBlock) -> bool {
        same_family(self.first, other.first) && self.first <= other.last && other.first <= self.last
    }

    /// Whether `other` lies wholly inside this block.
    pub fn covers(&self, other: &AddressBlock) -> bool {
        self.contains(other.first) && self.contains(other.last)
    }
}

impl FromStr for AddressBlock {
    type Err = BadBlock;

    fn from_str(text: &str) -> Result<Self, BadBlock> {
        let text = text.trim();
        let addr = |s: &str| {
            s.trim()
                .parse::<IpAddr>()
                .map_err(|_| BadBlock::Address(s.trim().to_owned()))
        };
        if let Some((network, prefix)) = text.split_once('/') {
            let prefix: u8 = prefix
                .trim()
                .parse()
                .map_err(|_| BadBlock::Prefix(text.to_owned()))?;
            return Self::subnet(addr(network)?, prefix);
        }
        if let Some((first, last)) = text.split_once('-') {
            let (first, last) = (addr(first)?, addr(last)?);
            if !same_family(first, last) {
                return Err(BadBlock::MixedFamilies(text.to_owned()));
            }
            if first > last {
                return Err(BadBlock::Backwards(text.to_owned()));
            }
            return Ok(AddressBlock {
                first,
                last,
                prefix: None,
            });
        }
        let one = addr(text)?;
        Self::subnet(one, IpNet::from(one).prefix_len())
    }
}

impl fmt::Display for AddressBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prefix {
            Some(prefix) => write!(f, "{}/{prefix}", self.first),
            None => write!(f, "{}-{}", self.first, self.last),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(s: &str) -> AddressBlock {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn subnets_and_ranges_parse_print_and_hold_their_addresses() {
        let net = block("10.1.2.0/24");
        assert_eq!(net.to_string(), "10.1.2.0/24");
        assert!(net.contains(ip("10.1.2.0")) && net.contains(ip("10.1.2.255")));
        assert!(!net.contains(ip("10.1.3.0")));
        assert!(!net.contains(ip("::ffff:10.1.2.1")), "families never mix");
        let range = block(" 10.1.2.10 - 10.1.2.99 ");
        assert_eq!(range.to_string(), "10.1.2.10-10.1.2.99");
        assert_eq!(range.span(), 89);
        assert!(net.covers(&range) && net.overlaps(&range));
        assert_eq!(block("10.9.9.9").to_string(), "10.9.9.9/32");
        assert!(block("fd00::/64").contains(ip("fd00::1234")));
        assert_eq!(block("0.0.0.0/0").span(), u128::from(u32::MAX));
        assert_eq!(block("::/0").span(), u128::MAX);
    }

    #[test]
    fn bad_blocks_say_what_is_wrong() {
        let err = |s: &str| s.parse::<AddressBlock>().unwrap_err().to_string();
        assert_eq!(err("10.1.2/24"), "`10.1.2` is not an IP address");
        assert_eq!(
            err("10.1.2.0/33"),
            "`10.1.2.0/33` has a bad prefix length (IPv4: 0-32, IPv6: 0-128)"
        );
        assert_eq!(
            err("10.1.2.5/24"),
            "`10.1.2.5/24` has host bits set; did you mean 10.1.2.0/24?"
        );
        assert_eq!(
            err("10.0.0.9-10.0.0.1"),
            "`10.0.0.9-10.0.0.1` ends before it starts"
        );
        assert_eq!(
            err("10.0.0.1-fd00::1"),
            "`10.0.0.1-fd00::1` mixes IPv4 and IPv6"
        );
    }

    #[test]
    fn an_automatic_block_is_the_addresses_slash_24_or_slash_64() {
        assert_eq!(
            AddressBlock::around(ip("10.7.8.9")).to_string(),
            "10.7.8.0/24"
        );
        assert_eq!(
            AddressBlock::around(ip("fd00:1:2:3:4::5")).to_string(),
            "fd00:1:2:3::/64"
        );
    }
}
