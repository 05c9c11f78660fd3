//! Configuration of the server and the client: TOML files, every key
//! optional but a few, unknown keys refused, and command line flags that
//! override the file so a node can be started from a script without one.
//!
//! Every error is one line that names the file, the line and the key.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::join::token::JoinToken;
use branchline_actors::topology::BusyConfig;
use serde::Deserialize;

/// Default control port of the server (the manual's server message port).
pub const DEFAULT_CONTROL_PORT: u16 = 34323;
/// Default foreground data port of clients (the manual's in-office data port).
pub const DEFAULT_FOREGROUND_PORT: u16 = 34760;
/// The background (between offices) data port of the reference manual.
pub const DEFAULT_BACKGROUND_PORT: u16 = 34750;
/// Default port of the embedded file storage (HTTP).
pub const DEFAULT_FILE_STORAGE_PORT: u16 = 34380;

/// A configuration that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has a bad key or value.
    #[error("invalid config {path}{line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// " line N" where known.
        line: String,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range or missing.
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// The node's place in the cluster PKI (`branchline pki`), shared by
/// server and client: all three files, or none (no authentication).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// The cluster CA's certificate (`ca.pem`).
    pub ca: Option<PathBuf>,
    /// This node's certificate.
    pub cert: Option<PathBuf>,
    /// This node's key.
    pub key: Option<PathBuf>,
    /// The CA's revocation list (`crl.pem`, from `branchline pki revoke`);
    /// optional.
    pub crl: Option<PathBuf>,
}

impl TlsSection {
    /// A `[tls]` section and `insecure = true` cannot go together.
    fn insecure_conflict(&self, insecure: bool) -> Result<(), ConfigError> {
        let given = self.ca.is_some() || self.cert.is_some() || self.key.is_some();
        match insecure && given {
            true => Err(ConfigError::Invalid(
                "insecure = true and a [tls] section contradict each other: remove one".into(),
            )),
            false => Ok(()),
        }
    }

    /// The node's identity, read from the files; `None` without a `[tls]`
    /// section (see [`crate::tls::warn_unauthenticated`]).
    pub fn identity(&self) -> Result<Option<crate::tls::Identity>, ConfigError> {
        match (&self.ca, &self.cert, &self.key) {
            (None, None, None) => Ok(None),
            (Some(ca), Some(cert), Some(key)) => {
                crate::tls::Identity::load(ca, cert, key, self.crl.as_deref())
                    .map(Some)
                    .map_err(|e| ConfigError::Invalid(format!("tls: {e}")))
            }
            _ => Err(ConfigError::Invalid(
                "tls.ca, tls.cert and tls.key go together: give all three or none".into(),
            )),
        }
    }
}

/// Logging settings, shared by server and client.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// A tracing filter: `info`, `debug`, `branchline=debug,warn`, ...
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The server's registry timing.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrySection {
    /// Seconds between client heartbeats.
    pub heartbeat_secs: u64,
    /// Seconds without a heartbeat before a client is dropped.
    pub client_timeout_secs: u64,
    /// Seconds an origin lease lasts before it is given to another client.
    pub lease_ttl_secs: u64,
    /// Seconds an office may make no progress on a content it wants before
    /// its clients stop waiting for the RVP and cross the WAN themselves.
    pub rvp_patience_secs: u64,
}

impl Default for RegistrySection {
    fn default() -> Self {
        RegistrySection {
            heartbeat_secs: 5,
            client_timeout_secs: 20,
            lease_ttl_secs: 60,
            rvp_patience_secs: 30,
        }
    }
}

/// The embedded file storage.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct FileStorageSection {
    /// Serve `dir` over HTTP.
    pub enabled: bool,
    /// The directory served.
    pub dir: Option<PathBuf>,
    /// Where it listens (TCP).
    pub listen: SocketAddr,
    /// The URL clients use to reach it; derived from `listen` if that is a
    /// specific address (`https://`, or `http://` when insecure).
    pub base_url: Option<String>,
    /// Connections open at once, in all; more are closed at once.
    pub max_connections: u32,
    /// Connections open at once from one IP address.
    pub connections_per_address: u32,
    /// Seconds a connection has for its TLS handshake, and for each
    /// request's head.
    pub request_deadline_secs: u64,
}

impl Default for FileStorageSection {
    fn default() -> Self {
        FileStorageSection {
            enabled: false,
            dir: None,
            listen: SocketAddr::from(([0, 0, 0, 0], DEFAULT_FILE_STORAGE_PORT)),
            base_url: None,
            max_connections: 1024,
            connections_per_address: 64,
            request_deadline_secs: 10,
        }
    }
}

impl FileStorageSection {
    /// The base URL clients fetch from: HTTPS when the server has its
    /// certificate (`tls`), plain HTTP only when insecure.
    pub fn url(&self, tls: bool) -> Result<String, ConfigError> {
        let scheme = if tls { "https" } else { "http" };
        match &self.base_url {
            Some(url) if !url.starts_with(&format!("{scheme}://")) => {
                Err(ConfigError::Invalid(format!(
                    "file_storage.base_url {url} must start with {scheme}:// (the file storage speaks {} here)",
                    if tls {
                        "HTTPS to cluster members"
                    } else {
                        "plain HTTP"
                    }
                )))
            }
            Some(url) => Ok(url.trim_end_matches('/').to_owned()),
            None if self.listen.ip().is_unspecified() => Err(ConfigError::Invalid(format!(
                "file_storage.listen is {} which clients cannot reach; set file_storage.base_url",
                self.listen
            ))),
            None => Ok(format!("{scheme}://{}", self.listen)),
        }
    }

    /// Its caps.
    pub fn limits(&self) -> crate::file_storage::Limits {
        crate::file_storage::Limits {
            connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
            per_address: usize::try_from(self.connections_per_address).unwrap_or(usize::MAX),
            deadline: Duration::from_secs(self.request_deadline_secs),
        }
    }
}

/// Caps on what clients may hold of the server's control endpoint.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ControlSection {
    /// Connections open at once from one IP address (clients behind one
    /// NAT share one).
    pub connections_per_address: u32,
    /// Requests one connection may make per second; a connection that
    /// keeps on beyond is closed.
    pub requests_per_sec: u32,
    /// Seconds a client has to send a request, and the registry to answer
    /// it (beyond a long poll's wait).
    pub request_deadline_secs: u64,
    /// Registered clients at most; more are refused until some leave.
    pub max_clients: u32,
}

impl Default for ControlSection {
    fn default() -> Self {
        let limits = crate::control::ControlLimits::default();
        ControlSection {
            connections_per_address: u32::try_from(limits.connections_per_address)
                .unwrap_or(u32::MAX),
            requests_per_sec: limits.requests_per_sec,
            request_deadline_secs: limits.deadline.as_secs(),
            max_clients: u32::try_from(branchline_actors::server::seats::DEFAULT_MAX_CLIENTS)
                .unwrap_or(u32::MAX),
        }
    }
}

impl ControlSection {
    /// The endpoint's caps.
    pub fn limits(&self) -> crate::control::ControlLimits {
        crate::control::ControlLimits {
            connections_per_address: usize::try_from(self.connections_per_address)
                .unwrap_or(usize::MAX),
            requests_per_sec: self.requests_per_sec,
            deadline: Duration::from_secs(self.request_deadline_secs),
        }
    }
}

/// The server's configuration.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Where the server keeps its metadata and admin socket.
    pub data_dir: Option<PathBuf>,
    /// The control endpoint (QUIC, UDP).
    #[serde(default = "default_control")]
    pub listen: SocketAddr,
    /// Registry timing.
    #[serde(default)]
    pub registry: RegistrySection,
    /// Caps on the control endpoint.
    #[serde(default)]
    pub control: ControlSection,
    /// The embedded file storage.
    #[serde(default)]
    pub file_storage: FileStorageSection,
    /// The Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsSection,
    /// Logging.
    #[serde(default)]
    pub log: LogSection,
    /// The cluster PKI given by the administrator; without it the server
    /// makes and uses its own CA (`<data_dir>/ca`).
    #[serde(default)]
    pub tls: TlsSection,
    /// Run without authentication: no CA, no certificates, anyone who
    /// reaches a port can join. Off by default; warned about at every start.
    #[serde(default)]
    pub insecure: bool,
}

fn default_control() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], DEFAULT_CONTROL_PORT))
}

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

/// The Prometheus endpoint.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Serve `GET /metrics`.
    pub enabled: bool,
    /// Where (TCP).
    pub listen: SocketAddr,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
    }
}

/// Binds the metrics listener before the node starts, if enabled.
pub fn metrics_listener(
    section: &MetricsSection,
) -> Result<Option<std::net::TcpListener>, ConfigError> {
    if !section.enabled {
        return Ok(None);
    }
    let listener = std::net::TcpListener::bind(section.listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| {
            ConfigError::Invalid(format!(
                "cannot listen on {} for metrics: {e}",
                section.listen
            ))
        })?;
    Ok(Some(listener))
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

/// Reads and parses a TOML file into `T`, with one-line errors.
pub fn load<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, path)
}

/// Parses TOML text into `T`; `path` names it in errors.
pub fn parse<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let line = e.span().map(|span| {
            format!(
                " line {}",
                text[..span.start.min(text.len())].matches('\n').count() + 1
            )
        });
        ConfigError::Parse {
            path: path.to_owned(),
            line: line.unwrap_or_default(),
            message: e.message().trim().replace('\n', " "),
        }
    })
}

/// Only the data directory of a config file of either kind: what the
/// command line tools need to find a node's admin socket.
pub fn data_dir_of(path: &Path) -> Result<PathBuf, ConfigError> {
    #[derive(Deserialize)]
    struct DataDirOnly {
        data_dir: Option<PathBuf>,
    }
    let only: DataDirOnly = {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let table: toml::Table = parse(&text, path)?;
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                path: path.to_owned(),
                line: String::new(),
                message: e.message().to_owned(),
            })?
    };
    only.data_dir
        .ok_or_else(|| ConfigError::Invalid(format!("{} sets no data_dir", path.display())))
}

fn positive(value: u64, key: &str) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::Invalid(format!(
            "{key} must be greater than 0"
        )));
    }
    Ok(())
}

fn required<T: Clone>(value: &Option<T>, key: &str, flag: &str) -> Result<T, ConfigError> {
    value.clone().ok_or_else(|| {
        ConfigError::Invalid(format!(
            "{key} is not set (in the config file or with {flag})"
        ))
    })
}

impl ServerConfig {
    /// A configuration with defaults only.
    pub fn empty() -> Self {
        parse("", Path::new("<defaults>")).expect("defaults parse")
    }

    /// Checks values and returns the data directory.
    pub fn validate(&self) -> Result<PathBuf, ConfigError> {
        positive(self.registry.heartbeat_secs, "registry.heartbeat_secs")?;
        positive(self.registry.lease_ttl_secs, "registry.lease_ttl_secs")?;
        positive(
            self.registry.rvp_patience_secs,
            "registry.rvp_patience_secs",
        )?;
        if self.registry.client_timeout_secs <= self.registry.heartbeat_secs {
            return Err(ConfigError::Invalid(format!(
                "registry.client_timeout_secs ({}) must be longer than registry.heartbeat_secs ({})",
                self.registry.client_timeout_secs, self.registry.heartbeat_secs
            )));
        }
        if self.file_storage.enabled {
            required(&self.file_storage.dir, "file_storage.dir", "--file-storage")?;
            self.file_storage.url(!self.insecure)?;
            let f = &self.file_storage;
            for (value, key) in [
                (u64::from(f.max_connections), "file_storage.max_connections"),
                (
                    u64::from(f.connections_per_address),
                    "file_storage.connections_per_address",
                ),
                (
                    f.request_deadline_secs,
                    "file_storage.request_deadline_secs",
                ),
            ] {
                positive(value, key)?;
            }
        }
        let c = &self.control;
        for (value, key) in [
            (
                u64::from(c.connections_per_address),
                "control.connections_per_address",
            ),
            (u64::from(c.requests_per_sec), "control.requests_per_sec"),
            (c.request_deadline_secs, "control.request_deadline_secs"),
            (u64::from(c.max_clients), "control.max_clients"),
        ] {
            positive(value, key)?;
        }
        self.tls.insecure_conflict(self.insecure)?;
        required(&self.data_dir, "data_dir", "--data-dir")
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

    /// Request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.transfer.request_timeout_secs)
    }
}

#[cfg(test)]
mod tests;
