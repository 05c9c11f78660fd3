//! The server's health check (`branchline health`, the console's Health
//! page): a plain function of what the server knows, so each rule is
//! tested without a server:
//!
//! - **clients heard from**: registered clients whose last heartbeat is
//!   older than two heartbeat periods are flagged (the server still
//!   counts them until `client_timeout_secs`);
//! - **protocol versions**: devices the control endpoint refused in the
//!   last day for speaking another protocol version fail the check: they
//!   cannot register until upgraded;
//! - **disk**: the data directory's filesystem with less than 1 GiB or 5 %
//!   free warns, and the metadata store's size is shown;
//! - **certificates**: the server's own, its CA's and the console's; one
//!   expiring within 30 days warns, an expired one fails.
//!
//! Origin reachability comes next (C3).

use std::time::Duration;

use branchline_actors::wire::{
    ClientView, HealthCheck, HealthLevel, HealthReport, PROTOCOL_VERSION, VersionRefusal,
};

/// How far back a version refusal counts.
pub const REFUSALS_COUNTED: Duration = Duration::from_secs(24 * 3600);
/// A certificate expiring sooner than this warns.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 24 * 3600);
/// Free space under which the disk check warns.
const LOW_FREE_BYTES: u64 = 1 << 30;

/// Free and total bytes of a filesystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disk {
    /// Free for the server's user.
    pub free: u64,
    /// In all.
    pub total: u64,
}

/// What the check looks at.
#[derive(Clone, Debug)]
pub struct Inputs {
    /// Now, ms since the epoch.
    pub now_ms: u64,
    /// The registered clients.
    pub clients: Vec<ClientView>,
    /// The clients' heartbeat period.
    pub heartbeat: Duration,
    /// Devices refused for their protocol version (oldest first).
    pub refusals: Vec<VersionRefusal>,
    /// The data directory's filesystem, if it could be read.
    pub disk: Option<Disk>,
    /// The metadata store's bytes on disk.
    pub metadata_bytes: u64,
    /// The certificates the server shows, by what they are, with when
    /// each expires (seconds since the epoch; `None` if unreadable).
    pub certificates: Vec<(String, Option<i64>)>,
}

/// The health report of `inputs`.
pub fn assess(inputs: &Inputs) -> HealthReport {
    HealthReport {
        at_ms: inputs.now_ms,
        checks: vec![
            clients_heard(inputs),
            versions(inputs),
            disk(inputs),
            certificates(inputs),
        ],
    }
}

fn check(name: &str, level: HealthLevel, detail: String, flagged: Vec<String>) -> HealthCheck {
    HealthCheck {
        name: name.to_owned(),
        level,
        detail,
        flagged,
    }
}

fn clients_heard(inputs: &Inputs) -> HealthCheck {
    let late_ms = u64::try_from(inputs.heartbeat.as_millis() * 2).unwrap_or(u64::MAX);
    let quiet: Vec<String> = inputs
        .clients
        .iter()
        .filter(|c| c.last_seen_ms_ago > late_ms)
        .map(|c| {
            format!(
                "{} ({}, {:.0} s ago)",
                c.name,
                c.office,
                c.last_seen_ms_ago as f64 / 1e3
            )
        })
        .collect();
    let all = inputs.clients.len();
    match quiet.len() {
        0 => check(
            "clients heard from",
            HealthLevel::Ok,
            format!(
                "all {all} registered clients sent a heartbeat in the last {} s",
                late_ms / 1000
            ),
            quiet,
        ),
        n => check(
            "clients heard from",
            HealthLevel::Warn,
            format!(
                "{n} of {all} registered clients sent no heartbeat in the last {} s",
                late_ms / 1000
            ),
            quiet,
        ),
    }
}

fn versions(inputs: &Inputs) -> HealthCheck {
    let since = inputs
        .now_ms
        .saturating_sub(u64::try_from(REFUSALS_COUNTED.as_millis()).unwrap_or(u64::MAX));
    let refused: Vec<String> = inputs
        .refusals
        .iter()
        .filter(|r| r.at_ms >= since)
        .map(|r| match &r.node {
            Some(node) => format!("{} (node {node}): {}", r.from, r.reason),
            None => format!("{}: {}", r.from, r.reason),
        })
        .collect();
    if refused.is_empty() {
        check(
            "protocol versions",
            HealthLevel::Ok,
            format!(
                "no device was refused for its protocol version in the last day (this server speaks branchline/{PROTOCOL_VERSION})"
            ),
            refused,
        )
    } else {
        check(
            "protocol versions",
            HealthLevel::Fail,
            format!(
                "connections refused in the last day for another protocol version: {} (this server speaks branchline/{PROTOCOL_VERSION}); upgrade those devices",
                refused.len()
            ),
            refused,
        )
    }
}

fn disk(inputs: &Inputs) -> HealthCheck {
    let meta = format!(
        "metadata {:.1} MiB",
        inputs.metadata_bytes as f64 / 1048576.0
    );
    let Some(Disk { free, total }) = inputs.disk else {
        return check(
            "disk",
            HealthLevel::Warn,
            format!("the data directory's filesystem could not be read; {meta}"),
            Vec::new(),
        );
    };
    let pct = if total == 0 {
        0.0
    } else {
        100.0 * free as f64 / total as f64
    };
    let detail = format!(
        "{:.1} GiB free of {:.1} GiB ({pct:.0} %); {meta}",
        free as f64 / 1073741824.0,
        total as f64 / 1073741824.0
    );
    let level = if free < LOW_FREE_BYTES || pct < 5.0 {
        HealthLevel::Warn
    } else {
        HealthLevel::Ok
    };
    check("disk", level, detail, Vec::new())
}

fn certificates(inputs: &Inputs) -> HealthCheck {
    let now = i64::try_from(inputs.now_ms / 1000).unwrap_or(i64::MAX);
    let soon = now.saturating_add(i64::try_from(EXPIRY_WARNING.as_secs()).unwrap_or(i64::MAX));
    let mut level = HealthLevel::Ok;
    let mut flagged = Vec::new();
    let mut found = Vec::new();
    for (what, expires) in &inputs.certificates {
        match *expires {
            None => {
                level = worse(level, HealthLevel::Warn);
                flagged.push(format!("{what}: its expiry could not be read"));
            }
            Some(at) => {
                let day = crate::commands::utc(u64::try_from(at).unwrap_or(0).saturating_mul(1000));
                let day = day.get(..10).unwrap_or(&day).to_owned();
                found.push(format!("{what} until {day}"));
                if at <= now {
                    level = HealthLevel::Fail;
                    flagged.push(format!("{what} expired on {day}"));
                } else if at <= soon {
                    level = worse(level, HealthLevel::Warn);
                    flagged.push(format!("{what} expires on {day}"));
                }
            }
        }
    }
    let detail = if found.is_empty() {
        "no certificate to check (insecure)".to_owned()
    } else {
        found.join("; ")
    };
    check("certificates", level, detail, flagged)
}

/// The worse of two levels.
fn worse(a: HealthLevel, b: HealthLevel) -> HealthLevel {
    match (a, b) {
        (HealthLevel::Fail, _) | (_, HealthLevel::Fail) => HealthLevel::Fail,
        (HealthLevel::Warn, _) | (_, HealthLevel::Warn) => HealthLevel::Warn,
        _ => HealthLevel::Ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use branchline_storage::NodeId;

    fn client(name: &str, ago_ms: u64) -> ClientView {
        ClientView {
            id: NodeId([2; 16]),
            name: name.into(),
            addr: "10.0.0.1:34760".parse().unwrap(),
            last_seen_ms_ago: ago_ms,
            office: "hq".into(),
            rvp: false,
            attributes: None,
        }
    }

    fn healthy() -> Inputs {
        Inputs {
            now_ms: 100_000_000,
            clients: vec![client("a", 1_000), client("b", 9_000)],
            heartbeat: Duration::from_secs(5),
            refusals: Vec::new(),
            disk: Some(Disk {
                free: 50 << 30,
                total: 100 << 30,
            }),
            metadata_bytes: 3 << 20,
            certificates: vec![("the cluster CA".into(), Some(4_000_000_000))],
        }
    }

    fn levels(report: &HealthReport) -> Vec<(String, HealthLevel)> {
        report
            .checks
            .iter()
            .map(|c| (c.name.clone(), c.level))
            .collect()
    }

    #[test]
    fn a_healthy_server_passes_every_check() {
        let report = assess(&healthy());
        assert!(
            levels(&report).iter().all(|(_, l)| *l == HealthLevel::Ok),
            "{report:?}"
        );
        assert_eq!(report.level(), HealthLevel::Ok);
        assert!(
            report.checks[2]
                .detail
                .contains("50.0 GiB free of 100.0 GiB (50 %); metadata 3.0 MiB")
        );
    }

    #[test]
    fn a_certificate_expiring_soon_warns_and_an_expired_one_fails() {
        let mut inputs = healthy();
        let now = i64::try_from(inputs.now_ms / 1000).unwrap();
        inputs.certificates = vec![
            ("the cluster CA".into(), Some(4_000_000_000)),
            ("the console".into(), Some(now + 10 * 86_400)),
        ];
        let check = &assess(&inputs).checks[3];
        assert_eq!(
            (check.name.as_str(), check.level),
            ("certificates", HealthLevel::Warn)
        );
        assert_eq!(
            check.flagged,
            ["the console expires on 1970-01-12"],
            "{check:?}"
        );
        inputs
            .certificates
            .push(("the server".into(), Some(now - 1)));
        inputs.certificates.push(("a file".into(), None));
        let check = &assess(&inputs).checks[3];
        assert_eq!(check.level, HealthLevel::Fail);
        assert_eq!(check.flagged.len(), 3, "{check:?}");
        inputs.certificates.clear();
        assert_eq!(assess(&inputs).checks[3].level, HealthLevel::Ok);
    }

    #[test]
    fn quiet_clients_warn_an_old_version_fails_and_a_full_disk_warns() {
        let mut inputs = healthy();
        inputs.clients.push(client("quiet", 11_000));
        let refusal = |at_ms: u64| VersionRefusal {
            at_ms,
            from: "10.0.0.9:5000".into(),
            node: Some("00ff".into()),
            reason: "protocol version branchline/1 vs branchline/7: upgrade the older node".into(),
        };
        inputs.refusals = vec![refusal(1_000), refusal(inputs.now_ms - 60_000)];
        inputs.disk = Some(Disk {
            free: 900 << 20,
            total: 100 << 30,
        });
        let report = assess(&inputs);
        assert_eq!(
            levels(&report),
            [
                ("clients heard from".into(), HealthLevel::Warn),
                ("protocol versions".into(), HealthLevel::Fail),
                ("disk".into(), HealthLevel::Warn),
                ("certificates".into(), HealthLevel::Ok),
            ]
        );
        assert_eq!(report.checks[0].flagged, ["quiet (hq, 11 s ago)"]);
        assert_eq!(
            report.checks[1].flagged.len(),
            1,
            "a refusal older than a day is not counted"
        );
        assert!(report.checks[1].flagged[0].contains("node 00ff"));
        assert_eq!(report.level(), HealthLevel::Fail);
        inputs.disk = None;
        assert_eq!(assess(&inputs).checks[2].level, HealthLevel::Warn);
    }
}
