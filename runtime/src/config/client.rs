//! The client's configuration: its sections and their checks.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use branchline_actors::topology::BusyConfig;
use serde::Deserialize;

use super::{
    ConfigError, DEFAULT_BACKGROUND_PORT, DEFAULT_FOREGROUND_PORT, LogSection, MetricsSection,
    TlsSection, parse, positive, required,
};
use crate::join::token::JoinToken;

fn default_foreground() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], DEFAULT_FOREGROUND_PORT))
}

/// The client's piece cache.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSection {
    /// Most MiB of contents the cache holds; least recently used complete
    /// contents are evicted to make room.
    pub quota_mib: u64,
    /// MiB of memory sled may use for its page cache.
    pub sled_cache_mib: u64,
}

impl Default for CacheSection {
    fn default() -> Self {
        CacheSection {
            quota_mib: 10 * 1024,
            sled_cache_mib: 4,
        }
    }
}

/// How downloads behave.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TransferSection {
    /// Piece requests in flight to one peer.
    pub per_peer: u32,
    /// Piece requests in flight per download.
    pub max_in_flight: u32,
    /// Piece requests in flight to origins per download.
    pub origin_in_flight: u32,
    /// Seconds before a piece request is given up.
    pub request_timeout_secs: u64,
    /// Milliseconds a source that failed rests before it is asked again.
    pub retry_after_ms: u64,
    /// Seconds a piece's requests to the peers that claim it may keep
    /// failing before it is taken from the origin (the deadline on a
    /// download: a holder that never delivers cannot stall it).
    pub stuck_after_secs: u64,
    /// Pieces that fail verification from one peer before it is banned
    /// (1 bans at the first).
    pub ban_after_strikes: u32,
}

impl Default for TransferSection {
    fn default() -> Self {
        TransferSection {
            per_peer: 4,
            max_in_flight: 16,
            origin_in_flight: 4,
            request_timeout_secs: 30,
            retry_after_ms: 2000,
            stuck_after_secs: 30,
            ban_after_strikes: 2,
        }
    }
}

impl TransferSection {
    /// The settings a client's transfers run with.
    pub fn settings(&self) -> branchline_actors::client::transfer::TransferSettings {
        use branchline_actors::client::picker::Limits;
        branchline_actors::client::transfer::TransferSettings {
            limits: Limits {
                per_peer: self.per_peer,
                total: self.max_in_flight,
                origin: self.origin_in_flight,
                retry_after: Duration::from_millis(self.retry_after_ms),
                stuck_after: Duration::from_secs(self.stuck_after_secs),
            },
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            poll_wait: Duration::from_secs(2),
        }
    }
}

/// What the client reports for its office's elections. The OS tells the
/// real values; the overrides replace them (odd hardware, tests).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ElectionSection {
    /// This client is a preferred RVP of its office.
    pub preferred: bool,
    /// MiB of free space kept for the device's user: not usable by the cache.
    pub reserve_mib: Option<u64>,
    /// Override: free MiB on the cache's filesystem.
    pub free_mib: Option<u64>,
    /// Override: `desktop` or `laptop`.
    pub chassis: Option<ChassisSetting>,
    /// Override: `server` or `workstation`.
    pub os: Option<OsSetting>,
    /// Override: seconds since boot.
    pub uptime_secs: Option<u64>,
}

/// `election.chassis`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ChassisSetting {
    /// A desktop.
    Desktop,
    /// A laptop.
    Laptop,
}

/// `election.os`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OsSetting {
    /// A server installation.
    Server,
    /// A workstation installation.
    Workstation,
}

impl ClientConfig {
    /// Where the background endpoint listens: `background_listen`, or
    /// `listen`'s address with the background port.
    pub fn background_listen(&self) -> SocketAddr {
        self.background_listen
            .unwrap_or_else(|| SocketAddr::new(self.listen.ip(), DEFAULT_BACKGROUND_PORT))
    }
}

/// Subnet discovery by UDP broadcast, used when the server is out of reach.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DiscoverySection {
    /// Ask and answer on the subnet.
    pub enabled: bool,
    /// The broadcast port (UDP).
    pub port: u16,
    /// The broadcast address; by default the client's /24 broadcast (on
    /// loopback, 127.255.255.255).
    pub broadcast: Option<IpAddr>,
    /// Milliseconds to collect replies to one request.
    pub wait_ms: u64,
}

/// The background protocol between offices.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct BackgroundSection {
    /// Delay-based congestion control (LEDBAT-like) on the background
    /// endpoint; off means quinn's CUBIC, like the foreground one.
    pub yielding: bool,
    /// Queuing delay the controller aims at, in milliseconds (1 to 1000).
    pub target_delay_ms: u64,
    /// Downloads from the office above pause while the link in is busy
    /// (needs `yielding`, whose controller measures the delay).
    pub pause: bool,
    /// Median queuing delay over a window at or above which the link is
    /// busy, ms.
    pub pause_delay_ms: u64,
    /// The window that must be busy for the pause, seconds.
    pub pause_after_secs: u64,
    /// The window that must not be busy for the downloads to resume,
    /// seconds.
    pub resume_after_secs: u64,
}

impl Default for BackgroundSection {
    fn default() -> Self {
        let busy = BusyConfig::default();
        BackgroundSection {
            yielding: true,
            target_delay_ms: 25,
            pause: busy.enabled,
            pause_delay_ms: millis(busy.pause_delay),
            pause_after_secs: busy.pause_after.as_secs(),
            resume_after_secs: busy.resume_after.as_secs(),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl BackgroundSection {
    /// The controller's settings, if it is on.
    pub fn ledbat(&self) -> Option<branchline_actors::pacing::ledbat::LedbatConfig> {
        self.yielding
            .then(|| branchline_actors::pacing::ledbat::LedbatConfig {
                target: Duration::from_millis(self.target_delay_ms),
                ..Default::default()
            })
    }

    /// The busy pause's settings.
    pub fn busy(&self) -> BusyConfig {
        BusyConfig {
            enabled: self.pause && self.yielding,
            pause_delay: Duration::from_millis(self.pause_delay_ms),
            pause_after: Duration::from_secs(self.pause_after_secs),
            resume_after: Duration::from_secs(self.resume_after_secs),
        }
    }
}

/// The reference manual's client broadcast port.
pub const DEFAULT_DISCOVERY_PORT: u16 = 34329;

impl Default for DiscoverySection {
    fn default() -> Self {
        DiscoverySection {
            enabled: true,
            port: DEFAULT_DISCOVERY_PORT,
            broadcast: None,
            wait_ms: 500,
        }
    }
}

/// Default `election.reserve_mib`: 1 GiB kept for the user.
pub const DEFAULT_RESERVE_MIB: u64 = 1024;

/// The client's configuration.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Where the client keeps its cache and admin socket.
    pub data_dir: Option<PathBuf>,
    /// The server's control endpoint.
    pub server: Option<SocketAddr>,
    /// The foreground endpoint peers connect to (QUIC, UDP).
    #[serde(default = "default_foreground")]
    pub listen: SocketAddr,
    /// The address peers use to reach this client, if not `listen`.
    pub advertise: Option<SocketAddr>,
    /// The background endpoint RVPs of child offices connect to (QUIC,
    /// UDP); by default `listen`'s address with port 34750.
    pub background_listen: Option<SocketAddr>,
    /// The address child offices use to reach the background endpoint, if
    /// not `background_listen` (by default `advertise`'s address with the
    /// background port).
    pub background_advertise: Option<SocketAddr>,
    /// A name for people; the host name by default.
    pub name: Option<String>,
    /// The piece cache.
    #[serde(default)]
    pub cache: CacheSection,
    /// Downloads.
    #[serde(default)]
    pub transfer: TransferSection,
    /// Elections.
    #[serde(default)]
    pub election: ElectionSection,
    /// Subnet discovery.
    #[serde(default)]
    pub discovery: DiscoverySection,
    /// The background protocol.
    #[serde(default)]
    pub background: BackgroundSection,
    /// The Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsSection,
    /// Logging.
    #[serde(default)]
    pub log: LogSection,
    /// What one peer may hold of this client.
    #[serde(default)]
    pub limits: LimitsSection,
    /// The cluster PKI given by the administrator; without it the client
    /// uses the certificate it got when it joined (see `join`).
    #[serde(default)]
    pub tls: TlsSection,
    /// A join token (`branchline token create` prints one): used once, at
    /// the first start, to get the client's certificate from the server.
    pub join: Option<String>,
    /// Run without authentication (see the server's `insecure`). Off by
    /// default; warned about at every start.
    #[serde(default)]
    pub insecure: bool,
}

/// What one peer may hold of a client's resources.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Connections open at once from one IP address, per endpoint; more
    /// are refused before their handshake.
    pub connections_per_peer: u32,
    /// Piece requests one peer may make per second (and in a burst); more
    /// are refused as busy, and the peer asks elsewhere or later.
    pub requests_per_sec: u32,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            connections_per_peer: 16,
            requests_per_sec: 1000,
        }
    }
}

/// The client's settings after validation.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The server (given, or the join token's).
    pub server: SocketAddr,
    /// The join token, if one was given.
    pub join: Option<JoinToken>,
}

impl ClientConfig {
    /// A configuration with defaults only.
    pub fn empty() -> Self {
        parse("", Path::new("<defaults>")).expect("defaults parse")
    }

    /// Checks values.
    pub fn validate(&self) -> Result<ClientSettings, ConfigError> {
        self.check_numbers()?;
        if let Some(name) = &self.name
            && (name.is_empty() || name.len() > 64 || name.chars().any(char::is_control))
        {
            return Err(ConfigError::Invalid(
                "name must be 1 to 64 printable characters".into(),
            ));
        }
        let join = self
            .join
            .as_deref()
            .map(str::parse::<JoinToken>)
            .transpose()
            .map_err(|e| ConfigError::Invalid(format!("join: {e}")))?;
        self.tls.insecure_conflict(self.insecure)?;
        if self.insecure && join.is_some() {
            return Err(ConfigError::Invalid(
                "insecure = true and a join token contradict each other: joining gets the client a certificate".into(),
            ));
        }
        let server = match self.server.or(join.as_ref().and_then(|t| t.server)) {
            Some(server) => server,
            None => required(&self.server, "server", "--server")?,
        };
        Ok(ClientSettings {
            data_dir: required(&self.data_dir, "data_dir", "--data-dir")?,
            server,
            join,
        })
    }

    /// Every number that must be positive is, and the ones that depend on
    /// each other agree.
    fn check_numbers(&self) -> Result<(), ConfigError> {
        positive(self.cache.quota_mib, "cache.quota_mib")?;
        positive(self.cache.sled_cache_mib, "cache.sled_cache_mib")?;
        let t = &self.transfer;
        for (value, key) in [
            (u64::from(t.per_peer), "transfer.per_peer"),
            (u64::from(t.max_in_flight), "transfer.max_in_flight"),
            (u64::from(t.origin_in_flight), "transfer.origin_in_flight"),
            (u64::from(t.ban_after_strikes), "transfer.ban_after_strikes"),
            (
                u64::from(self.limits.connections_per_peer),
                "limits.connections_per_peer",
            ),
            (
                u64::from(self.limits.requests_per_sec),
                "limits.requests_per_sec",
            ),
            (t.request_timeout_secs, "transfer.request_timeout_secs"),
            (t.stuck_after_secs, "transfer.stuck_after_secs"),
            (self.discovery.wait_ms, "discovery.wait_ms"),
            (
                self.background.target_delay_ms,
                "background.target_delay_ms",
            ),
            (self.background.pause_delay_ms, "background.pause_delay_ms"),
            (
                self.background.pause_after_secs,
                "background.pause_after_secs",
            ),
            (
                self.background.resume_after_secs,
                "background.resume_after_secs",
            ),
        ] {
            positive(value, key)?;
        }
        if self.background.target_delay_ms > 1000 {
            return Err(ConfigError::Invalid(format!(
                "background.target_delay_ms ({}) must be at most 1000",
                self.background.target_delay_ms
            )));
        }
        let pausing = self.background.pause && self.background.yielding;
        if pausing && self.background.pause_delay_ms <= self.background.target_delay_ms {
            return Err(ConfigError::Invalid(format!(
                "background.pause_delay_ms ({}) must be above background.target_delay_ms ({}): \
                 the controller itself keeps about the target",
                self.background.pause_delay_ms, self.background.target_delay_ms
            )));
        }
        if t.per_peer > t.max_in_flight {
            return Err(ConfigError::Invalid(format!(
                "transfer.per_peer ({}) must not exceed transfer.max_in_flight ({})",
                t.per_peer, t.max_in_flight
            )));
        }
        Ok(())
    }

    /// Request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.transfer.request_timeout_secs)
    }
}
