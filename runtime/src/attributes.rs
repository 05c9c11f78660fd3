//! What a client reports about itself for its office's elections, read
//! from the OS, with the config's `[election]` overrides on top:
//!
//! - free space: `statvfs` of the cache's filesystem;
//! - chassis: DMI's chassis type (`/sys/class/dmi/id/chassis_type`);
//! - OS type: a workstation if a graphical session is installed or the
//!   default systemd target is graphical, else a server;
//! - uptime: `/proc/uptime`;
//! - usable free space: free space less `reserve_mib`, capped by the
//!   cache quota.
//!
//! Reading touches the filesystem: call [`AttributeSource::read`] from a
//! blocking thread.

use std::path::{Path, PathBuf};

use branchline_actors::server::election::{Attributes, Chassis, OsKind};

use crate::config::{ChassisSetting, DEFAULT_RESERVE_MIB, ElectionSection, OsSetting};

const MIB: u64 = 1024 * 1024;

/// Where a client's attributes come from.
#[derive(Clone, Debug)]
pub struct AttributeSource {
    cache_dir: PathBuf,
    quota_bytes: u64,
    settings: ElectionSection,
}

impl AttributeSource {
    /// Attributes of the client whose cache is in `cache_dir`.
    pub fn new(cache_dir: &Path, quota_bytes: u64, settings: ElectionSection) -> Self {
        AttributeSource {
            cache_dir: cache_dir.to_owned(),
            quota_bytes,
            settings,
        }
    }

    /// Reads the attributes now.
    pub fn read(&self) -> Attributes {
        let s = &self.settings;
        let free_bytes = s
            .free_mib
            .map_or_else(|| free_space(&self.cache_dir), |m| m * MIB);
        let reserve = s.reserve_mib.unwrap_or(DEFAULT_RESERVE_MIB) * MIB;
        Attributes {
            free_bytes,
            preferred: s.preferred,
            chassis: match s.chassis {
                Some(ChassisSetting::Desktop) => Chassis::Desktop,
                Some(ChassisSetting::Laptop) => Chassis::Laptop,
                None => std::fs::read_to_string("/sys/class/dmi/id/chassis_type")
                    .map_or(Chassis::Unknown, |t| chassis_of_dmi(&t)),
            },
            os: match s.os {
                Some(OsSetting::Server) => OsKind::Server,
                Some(OsSetting::Workstation) => OsKind::Workstation,
                None => os_kind(Path::new("/")),
            },
            uptime_secs: s.uptime_secs.unwrap_or_else(|| {
                std::fs::read_to_string("/proc/uptime").map_or(0, |t| uptime_of(&t))
            }),
            usable_free_bytes: free_bytes.saturating_sub(reserve).min(self.quota_bytes),
        }
    }
}

/// Free bytes for an unprivileged user on the filesystem holding `dir`
/// (0 if it cannot be read).
fn free_space(dir: &Path) -> u64 {
    rustix::fs::statvfs(dir).map_or(0, |s| s.f_bavail.saturating_mul(s.f_frsize))
}

/// A DMI (SMBIOS) chassis type number as a chassis.
fn chassis_of_dmi(text: &str) -> Chassis {
    match text.trim().parse::<u8>() {
        Ok(3..=7 | 13 | 15..=17 | 23..=25 | 28 | 29 | 35 | 36) => Chassis::Desktop,
        Ok(8..=11 | 14 | 30..=32) => Chassis::Laptop,
        _ => Chassis::Unknown,
    }
}

/// Seconds of uptime from `/proc/uptime`'s text.
fn uptime_of(text: &str) -> u64 {
    text.split_whitespace()
        .next()
        .and_then(|s| s.split('.').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A workstation if the system under `root` has a graphical session or
/// boots into one, else a server.
fn os_kind(root: &Path) -> OsKind {
    let has_entries = |dir: &str| {
        std::fs::read_dir(root.join(dir)).is_ok_and(|mut entries| entries.next().is_some())
    };
    let graphical_target = std::fs::read_link(root.join("etc/systemd/system/default.target"))
        .is_ok_and(|target| target.to_string_lossy().contains("graphical"));
    if graphical_target
        || has_entries("usr/share/xsessions")
        || has_entries("usr/share/wayland-sessions")
    {
        OsKind::Workstation
    } else {
        OsKind::Server
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dmi_chassis_types_map_to_desktops_and_laptops() {
        assert_eq!(chassis_of_dmi("3\n"), Chassis::Desktop);
        assert_eq!(chassis_of_dmi("23"), Chassis::Desktop, "rack mount");
        assert_eq!(chassis_of_dmi("10"), Chassis::Laptop, "notebook");
        assert_eq!(chassis_of_dmi("1"), Chassis::Unknown, "other");
        assert_eq!(chassis_of_dmi("x"), Chassis::Unknown);
    }

    #[test]
    fn uptime_is_the_first_number_of_proc_uptime() {
        assert_eq!(uptime_of("22641.06 41713.06\n"), 22641);
        assert_eq!(uptime_of(""), 0);
    }

    #[test]
    fn a_graphical_session_makes_a_workstation() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(os_kind(root.path()), OsKind::Server);
        std::fs::create_dir_all(root.path().join("usr/share/xsessions")).unwrap();
        std::fs::write(root.path().join("usr/share/xsessions/gnome.desktop"), "").unwrap();
        assert_eq!(os_kind(root.path()), OsKind::Workstation);
    }

    #[test]
    fn overrides_replace_the_os_and_usable_space_keeps_the_reserve_and_quota() {
        let dir = tempfile::tempdir().unwrap();
        let settings = ElectionSection {
            preferred: true,
            reserve_mib: Some(100),
            free_mib: Some(1000),
            chassis: Some(ChassisSetting::Desktop),
            os: Some(OsSetting::Server),
            uptime_secs: Some(77),
        };
        let a = AttributeSource::new(dir.path(), 500 * MIB, settings.clone()).read();
        assert_eq!(
            a,
            Attributes {
                free_bytes: 1000 * MIB,
                preferred: true,
                chassis: Chassis::Desktop,
                os: OsKind::Server,
                uptime_secs: 77,
                usable_free_bytes: 500 * MIB,
            }
        );
        let roomy = AttributeSource::new(dir.path(), 10_000 * MIB, settings).read();
        assert_eq!(roomy.usable_free_bytes, 900 * MIB, "free less the reserve");
        let real = AttributeSource::new(dir.path(), u64::MAX, ElectionSection::default()).read();
        assert!(real.free_bytes > 0, "statvfs of a real directory");
    }
}
