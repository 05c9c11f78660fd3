//! What the scenarios in simulated time share: the server's timing, a
//! client's election attributes, a package of seeded bytes, addresses.

use std::net::IpAddr;
use std::time::Duration;

use branchline::config::{ChassisSetting, ElectionSection, OsSetting};
use branchline_actors::server::registry::RegistryTiming;

pub const MIB: usize = 1024 * 1024;
pub const PIECE: u32 = 256 * 1024;

/// The server's timing in the scenarios.
pub fn timing() -> RegistryTiming {
    RegistryTiming {
        client_timeout: Duration::from_secs(15),
        lease_ttl: Duration::from_secs(30),
        rvp_patience: Duration::from_secs(60),
    }
}

/// Reported by a client with `free_gib` free: more free space ranks first.
pub fn election(free_gib: u64) -> ElectionSection {
    ElectionSection {
        preferred: false,
        reserve_mib: Some(0),
        free_mib: Some(free_gib * 1024),
        chassis: Some(ChassisSetting::Desktop),
        os: Some(OsSetting::Workstation),
        uptime_secs: Some(3600),
    }
}

/// `size` bytes drawn from `seed` (xorshift).
pub fn package(size: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}
