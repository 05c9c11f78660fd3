//! How the background protocol treats the WAN link from an office's parent
//! into the office, set per office in the topology spreadsheet. Every
//! setting left empty falls back to the node's own `[background]` config.
//!
//! Two sides act on them:
//! - the side that sends, a client of an office above serving a client of
//!   this office on its background endpoint: the congestion controller of
//!   that connection (`yielding`, `target_delay_ms`), found by the peer's
//!   address in the table the server sends ([`LinkBelow`]);
//! - the side that receives, the office's clients downloading from the
//!   office above: the busy pause and its thresholds, and the rate floor
//!   that still flows while the pause holds. The rate cap is the office's
//!   `wan_rate_mbit`.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::AddressBlock;
use crate::pacing::ledbat::LedbatConfig;

/// When the busy pause of the link into an office ([`crate::pacing::busy`])
/// stops its downloads and when it lets them go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusyConfig {
    /// Pause at all (false: never).
    pub enabled: bool,
    /// Queuing delay whose median over a window makes the link busy.
    pub pause_delay: Duration,
    /// The window that must be busy for the pause.
    pub pause_after: Duration,
    /// The window that must not be busy for the downloads to resume.
    pub resume_after: Duration,
}

impl Default for BusyConfig {
    fn default() -> Self {
        BusyConfig {
            enabled: true,
            pause_delay: Duration::from_millis(30),
            pause_after: Duration::from_secs(5),
            resume_after: Duration::from_secs(5),
        }
    }
}

/// How far above the controller's target a pause threshold must be: a
/// link whose queue sits at the target is working as meant, not busy.
pub const PAUSE_ABOVE_TARGET: Duration = Duration::from_millis(5);

/// One office link's settings; `None` means the node's own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LinkSettings {
    /// Delay-based congestion control on the link (false: CUBIC).
    pub yielding: Option<bool>,
    /// Queuing delay the controller aims at, ms.
    pub target_delay_ms: Option<u32>,
    /// Rate that still flows while the busy pause holds, Mbit/s.
    pub min_rate_mbit: Option<u32>,
    /// Pause at all.
    pub pause: Option<bool>,
    /// Median queuing delay at or above which the link is busy, ms.
    pub pause_delay_ms: Option<u32>,
    /// The window that must be busy for the pause, seconds.
    pub pause_after_secs: Option<u32>,
    /// The window that must not be busy to resume, seconds.
    pub resume_after_secs: Option<u32>,
}

impl LinkSettings {
    /// True when nothing is set.
    pub fn is_default(&self) -> bool {
        *self == LinkSettings::default()
    }

    /// True when a setting of the sending side is set.
    pub fn sets_sender(&self) -> bool {
        self.yielding.is_some() || self.target_delay_ms.is_some()
    }

    /// The controller the sending side runs on this link: `node`'s (`None`:
    /// CUBIC), with what this link sets.
    pub fn controller(&self, node: Option<LedbatConfig>) -> Option<LedbatConfig> {
        if !self.yielding.unwrap_or(node.is_some()) {
            return None;
        }
        let mut config = node.unwrap_or_default();
        if let Some(ms) = self.target_delay_ms {
            config.target = Duration::from_millis(ms.into());
        }
        Some(config)
    }

    /// The busy pause of this link on the receiving side: `node`'s, with
    /// what this link sets. `samples` is the node's own controller's
    /// target: without it nothing measures the delay and the link never
    /// pauses; nor does a link that does not yield (a CUBIC sender keeps
    /// the queue full by design). The threshold stays above the target the
    /// sender aims at (by [`PAUSE_ABOVE_TARGET`]) whatever the two were
    /// set to.
    pub fn busy(&self, node: BusyConfig, samples: Option<Duration>) -> BusyConfig {
        let pause_delay = self
            .pause_delay_ms
            .map_or(node.pause_delay, |ms| Duration::from_millis(ms.into()));
        let target = self
            .target_delay_ms
            .map(|ms| Duration::from_millis(ms.into()))
            .or(samples)
            .unwrap_or_default();
        let yields = self.yielding.unwrap_or(true);
        BusyConfig {
            enabled: samples.is_some() && yields && self.pause.unwrap_or(node.enabled),
            pause_delay: pause_delay.max(target + PAUSE_ABOVE_TARGET),
            pause_after: self
                .pause_after_secs
                .map_or(node.pause_after, |s| Duration::from_secs(s.into())),
            resume_after: self
                .resume_after_secs
                .map_or(node.resume_after, |s| Duration::from_secs(s.into())),
        }
    }
}

/// The sending side's settings of the link into an office below, for
/// the clients of an office above: found by a peer's address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkBelow {
    /// The office's blocks.
    pub blocks: Vec<AddressBlock>,
    /// Its link's settings.
    pub settings: LinkSettings,
}

/// The settings of the link `addr` is behind: those of the office whose
/// most specific block holds it, if `links` lists it.
pub fn link_of(links: &[LinkBelow], addr: IpAddr) -> Option<&LinkSettings> {
    links
        .iter()
        .flat_map(|l| l.blocks.iter().map(move |b| (b, &l.settings)))
        .filter(|(b, _)| b.contains(addr))
        .min_by_key(|(b, _)| b.span())
        .map(|(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_settings_keep_the_nodes_and_set_ones_win() {
        let node = BusyConfig::default();
        let target = Some(Duration::from_millis(25));
        assert_eq!(LinkSettings::default().busy(node, target), node);
        let link = LinkSettings {
            pause: Some(false),
            pause_after_secs: Some(9),
            ..LinkSettings::default()
        };
        let busy = link.busy(node, target);
        assert!(!busy.enabled);
        assert_eq!(busy.pause_after, Duration::from_secs(9));
        assert_eq!(busy.resume_after, node.resume_after);
    }

    #[test]
    fn the_threshold_stays_above_the_target() {
        let node = BusyConfig::default();
        let link = LinkSettings {
            pause_delay_ms: Some(10),
            ..LinkSettings::default()
        };
        let busy = link.busy(node, Some(Duration::from_millis(25)));
        assert_eq!(busy.pause_delay, Duration::from_millis(30));
        let busy = LinkSettings::default().busy(node, Some(Duration::from_millis(60)));
        assert_eq!(busy.pause_delay, Duration::from_millis(65));
    }

    #[test]
    fn without_the_delay_based_controller_nothing_pauses() {
        let on = LinkSettings {
            pause: Some(true),
            ..LinkSettings::default()
        };
        assert!(!on.busy(BusyConfig::default(), None).enabled);
        let cubic = LinkSettings {
            yielding: Some(false),
            ..on
        };
        let samples = Some(Duration::from_millis(25));
        assert!(!cubic.busy(BusyConfig::default(), samples).enabled);
        assert!(on.busy(BusyConfig::default(), samples).enabled);
    }

    #[test]
    fn the_sender_runs_the_links_controller_or_the_nodes() {
        let node = Some(LedbatConfig::default());
        assert_eq!(LinkSettings::default().controller(node), node);
        assert_eq!(LinkSettings::default().controller(None), None);
        let slow = LinkSettings {
            target_delay_ms: Some(60),
            ..LinkSettings::default()
        };
        assert_eq!(
            slow.controller(node).unwrap().target,
            Duration::from_millis(60)
        );
        assert_eq!(slow.controller(None), None, "the node runs CUBIC");
        let forced = LinkSettings {
            yielding: Some(true),
            ..slow
        };
        assert_eq!(
            forced.controller(None).unwrap().target,
            Duration::from_millis(60)
        );
        let off = LinkSettings {
            yielding: Some(false),
            ..LinkSettings::default()
        };
        assert_eq!(off.controller(node), None);
        // The receiver pauses above the target the sender aims at.
        let busy = slow.busy(BusyConfig::default(), Some(Duration::from_millis(25)));
        assert_eq!(busy.pause_delay, Duration::from_millis(65));
    }

    #[test]
    fn a_peer_is_behind_the_link_of_its_most_specific_office() {
        let settings = |ms| LinkSettings {
            target_delay_ms: Some(ms),
            ..LinkSettings::default()
        };
        let links = vec![
            LinkBelow {
                blocks: vec!["10.1.0.0/16".parse().unwrap()],
                settings: settings(40),
            },
            LinkBelow {
                blocks: vec!["10.1.7.0/24".parse().unwrap()],
                settings: LinkSettings::default(),
            },
        ];
        let of = |a: &str| link_of(&links, a.parse().unwrap()).map(|s| s.target_delay_ms);
        assert_eq!(of("10.1.2.3"), Some(Some(40)));
        assert_eq!(of("10.1.7.3"), Some(None), "the nested office sets nothing");
        assert_eq!(of("10.2.0.1"), None);
    }
}
