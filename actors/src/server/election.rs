//! Ranking an office's clients, which elects its RVPs and orders the peers
//! its clients try. The reference manual's six criteria, top to bottom:
//!
//! 1. largest actual free space;
//! 2. preferred devices (RVPs named by the administrator);
//! 3. desktops over laptops;
//! 4. servers over workstations;
//! 5. longer uptime;
//! 6. largest usable free space.
//!
//! Free space and uptime are compared in steps ([`FREE_SPACE_STEP`],
//! [`UPTIME_STEP`]), not to the byte or second: compared exactly, no two
//! devices would ever tie on free space and criteria 2 to 6 would never
//! matter. Within a step the next criterion decides. On a full tie a
//! sitting RVP keeps its seat (no flapping when attributes wobble across a
//! step boundary), and then the node id decides, so every computation
//! agrees.

use std::cmp::Reverse;

use serde::{Deserialize, Serialize};

use branchline_storage::NodeId;

/// Free space within this much counts as equal (1 GiB).
pub const FREE_SPACE_STEP: u64 = 1 << 30;
/// Uptimes within this much count as equal (1 hour).
pub const UPTIME_STEP: u64 = 3600;

/// A device's form, from DMI's chassis type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Chassis {
    /// Desktop, tower, rack, blade...: stays on and plugged in.
    Desktop,
    /// Laptop, notebook, tablet...
    Laptop,
    /// Not reported.
    Unknown,
}

/// What the operating system is installed as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum OsKind {
    /// A server installation.
    Server,
    /// A workstation installation.
    Workstation,
}

/// What a client reports about itself for elections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attributes {
    /// Free bytes on the cache's filesystem.
    pub free_bytes: u64,
    /// Whether the client is configured as a preferred RVP.
    pub preferred: bool,
    /// Its chassis.
    pub chassis: Chassis,
    /// Its OS installation type.
    pub os: OsKind,
    /// Seconds since boot.
    pub uptime_secs: u64,
    /// Free bytes it may use: free space less the reserve, capped by the
    /// cache quota.
    pub usable_free_bytes: u64,
}

impl Default for Attributes {
    /// Nothing known: ranks below any client that reported.
    fn default() -> Self {
        Attributes {
            free_bytes: 0,
            preferred: false,
            chassis: Chassis::Unknown,
            os: OsKind::Workstation,
            uptime_secs: 0,
            usable_free_bytes: 0,
        }
    }
}

/// A client standing in its office's election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Who.
    pub id: NodeId,
    /// Its attributes.
    pub attributes: Attributes,
    /// Named as preferred by the office (in the topology), whatever its
    /// own config says.
    pub preferred_by_office: bool,
    /// One of the office's RVPs now: wins a full tie.
    pub incumbent: bool,
}

type Key = (
    Reverse<u64>,
    Reverse<bool>,
    u8,
    u8,
    Reverse<u64>,
    Reverse<u64>,
    Reverse<bool>,
    NodeId,
);

fn key(c: &Candidate) -> Key {
    let a = &c.attributes;
    let chassis = match a.chassis {
        Chassis::Desktop => 0,
        Chassis::Unknown => 1,
        Chassis::Laptop => 2,
    };
    let os = match a.os {
        OsKind::Server => 0,
        OsKind::Workstation => 1,
    };
    (
        Reverse(a.free_bytes / FREE_SPACE_STEP),
        Reverse(a.preferred || c.preferred_by_office),
        chassis,
        os,
        Reverse(a.uptime_secs / UPTIME_STEP),
        Reverse(a.usable_free_bytes),
        Reverse(c.incumbent),
        c.id,
    )
}

/// The candidates best first: the first `rvp_count` are the office's RVPs,
/// and the whole order is the order in which its peers are tried.
pub fn rank(candidates: &[Candidate]) -> Vec<NodeId> {
    let mut sorted: Vec<&Candidate> = candidates.iter().collect();
    sorted.sort_by_key(|c| key(c));
    sorted.into_iter().map(|c| c.id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn base() -> Attributes {
        Attributes {
            free_bytes: 100 * GIB,
            preferred: false,
            chassis: Chassis::Laptop,
            os: OsKind::Workstation,
            uptime_secs: 3600,
            usable_free_bytes: 10 * GIB,
        }
    }

    fn candidate(n: u8, change: impl FnOnce(&mut Attributes)) -> Candidate {
        let mut attributes = base();
        change(&mut attributes);
        Candidate {
            id: NodeId([n; 16]),
            attributes,
            preferred_by_office: false,
            incumbent: false,
        }
    }

    fn winner(a: Candidate, b: Candidate) -> u8 {
        rank(&[a, b])[0].0[0]
    }

    #[test]
    fn each_criterion_decides_in_the_manuals_order() {
        // 1. free space beats everything below it.
        let roomy = candidate(1, |a| a.free_bytes = 200 * GIB);
        let rest = candidate(2, |a| {
            a.preferred = true;
            a.chassis = Chassis::Desktop;
            a.os = OsKind::Server;
            a.uptime_secs = 90 * 86400;
            a.usable_free_bytes = 99 * GIB;
        });
        assert_eq!(winner(roomy, rest), 1);
        // 2. preferred beats chassis and below.
        let preferred = candidate(1, |a| a.preferred = true);
        let desktop = candidate(2, |a| {
            a.chassis = Chassis::Desktop;
            a.os = OsKind::Server;
        });
        assert_eq!(winner(preferred, desktop), 1);
        // 3. desktop beats server OS and below.
        let desktop = candidate(1, |a| a.chassis = Chassis::Desktop);
        let server = candidate(2, |a| {
            a.os = OsKind::Server;
            a.uptime_secs = 90 * 86400;
        });
        assert_eq!(winner(desktop, server), 1);
        // 4. server OS beats uptime and below.
        let server = candidate(1, |a| a.os = OsKind::Server);
        let long_up = candidate(2, |a| {
            a.uptime_secs = 90 * 86400;
            a.usable_free_bytes = 99 * GIB;
        });
        assert_eq!(winner(server, long_up), 1);
        // 5. uptime beats usable free space.
        let long_up = candidate(1, |a| a.uptime_secs = 10 * 3600);
        let usable = candidate(2, |a| a.usable_free_bytes = 99 * GIB);
        assert_eq!(winner(long_up, usable), 1);
        // 6. usable free space decides last.
        let usable = candidate(1, |a| a.usable_free_bytes = 11 * GIB);
        assert_eq!(winner(usable, candidate(2, |_| {})), 1);
    }

    #[test]
    fn small_differences_in_free_space_and_uptime_leave_the_next_criterion_to_decide() {
        let a = candidate(1, |a| a.free_bytes = 100 * GIB + 500 * (1 << 20));
        let b = candidate(2, |a| a.preferred = true);
        assert_eq!(winner(a, b), 2, "500 MiB more free space is the same step");
        let mut by_office = candidate(3, |_| {});
        by_office.preferred_by_office = true;
        assert_eq!(winner(candidate(4, |_| {}), by_office), 3);
    }

    #[test]
    fn a_sitting_rvp_keeps_its_seat_on_a_tie_but_not_against_a_better_candidate() {
        let mut sitting = candidate(9, |_| {});
        sitting.incumbent = true;
        assert_eq!(winner(candidate(1, |_| {}), sitting), 9);
        let better = candidate(1, |a| a.usable_free_bytes = 11 * GIB);
        assert_eq!(winner(better, sitting), 1);
    }

    #[test]
    fn ties_break_by_id_so_every_ranking_agrees() {
        let order = rank(&[
            candidate(9, |_| {}),
            candidate(3, |_| {}),
            candidate(5, |_| {}),
        ]);
        assert_eq!(
            order.iter().map(|id| id.0[0]).collect::<Vec<_>>(),
            [3, 5, 9]
        );
    }
}
