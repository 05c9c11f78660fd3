//! Address blocks: the subnets (`10.1.2.0/24`, `fd00::/64`) and ranges
//! (`10.1.2.10-10.1.2.99`) an office is made of, parsed from text, with
//! the questions office resolution asks of them: does a block hold an
//! address, how large is it, does it overlap another.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

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

fn bits(addr: IpAddr) -> (u128, u32) {
    match addr {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

fn from_bits(value: u128, like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(u32::try_from(value).unwrap_or(u32::MAX).into()),
        IpAddr::V6(_) => IpAddr::V6(value.into()),
    }
}

/// The lowest `n` bits set.
fn ones(n: u32) -> u128 {
    if n >= 128 {
        u128::MAX
    } else {
        (1u128 << n) - 1
    }
}

/// The network bits of a `prefix` in an address `width` bits wide.
fn mask(prefix: u8, width: u32) -> u128 {
    ones(width) & !ones(width - u32::from(prefix))
}

impl AddressBlock {
    /// The subnet `network/prefix`; host bits must be clear.
    pub fn subnet(network: IpAddr, prefix: u8) -> Result<Self, BadBlock> {
        let text = format!("{network}/{prefix}");
        let (value, width) = bits(network);
        if u32::from(prefix) > width {
            return Err(BadBlock::Prefix(text));
        }
        let m = mask(prefix, width);
        let host = ones(width) & !m;
        if value & host != 0 {
            return Err(BadBlock::HostBits {
                text,
                network: format!("{}/{prefix}", from_bits(value & m, network)),
            });
        }
        let last = value | host;
        Ok(AddressBlock {
            first: network,
            last: from_bits(last, network),
            prefix: Some(prefix),
        })
    }

    /// The /24 (IPv4) or /64 (IPv6) that holds `addr`: an automatic office.
    pub fn around(addr: IpAddr) -> Self {
        let (value, width) = bits(addr);
        let prefix = if width == 32 { 24 } else { 64 };
        let network = from_bits(value & mask(prefix, width), addr);
        Self::subnet(network, prefix).expect("a masked network is a valid subnet")
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
        same_family(addr, self.first)
            && bits(self.first).0 <= bits(addr).0
            && bits(addr).0 <= bits(self.last).0
    }

    /// How many addresses the block holds, less one (so a whole IPv6 space
    /// fits): smaller is more specific.
    pub fn span(&self) -> u128 {
        bits(self.last).0 - bits(self.first).0
    }

    /// Whether the two blocks share an address.
    pub fn overlaps(&self, other: &AddressBlock) -> bool {
        same_family(self.first, other.first)
            && bits(self.first).0 <= bits(other.last).0
            && bits(other.first).0 <= bits(self.last).0
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
            if bits(first).0 > bits(last).0 {
                return Err(BadBlock::Backwards(text.to_owned()));
            }
            return Ok(AddressBlock {
                first,
                last,
                prefix: None,
            });
        }
        let one = addr(text)?;
        let width = bits(one).1;
        Self::subnet(one, u8::try_from(width).expect("32 or 128"))
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
