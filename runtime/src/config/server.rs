//! The server's configuration: its sections and their checks.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{
    ConfigError, DEFAULT_CONSOLE_PORT, DEFAULT_CONTROL_PORT, DEFAULT_FILE_STORAGE_PORT, LogSection,
    MetricsSection, TlsSection, parse, positive, required,
};

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

/// The administrator's console and its HTTPS API.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSection {
    /// Serve it.
    pub enabled: bool,
    /// Where (TCP); default: the control endpoint's address, port 34390.
    pub listen: Option<SocketAddr>,
    /// The certificate it shows (PEM, the chain); default: one the
    /// cluster CA signs at each start for `names`.
    pub cert: Option<PathBuf>,
    /// Its key (PEM).
    pub key: Option<PathBuf>,
    /// Host names and addresses browsers reach it by, in the certificate
    /// the cluster CA signs (the host's name, `localhost`, 127.0.0.1 and
    /// the listen address are always in).
    pub names: Vec<String>,
    /// Minutes a session may stay unused.
    pub session_idle_mins: u64,
    /// Hours a session lives at most.
    pub session_hours: u64,
}

impl Default for ConsoleSection {
    fn default() -> Self {
        ConsoleSection {
            enabled: true,
            listen: None,
            cert: None,
            key: None,
            names: Vec::new(),
            session_idle_mins: 30,
            session_hours: 8,
        }
    }
}

impl ConsoleSection {
    /// Where it listens when the control endpoint is at `control`.
    pub fn listen(&self, control: SocketAddr) -> SocketAddr {
        self.listen
            .unwrap_or_else(|| SocketAddr::new(control.ip(), DEFAULT_CONSOLE_PORT))
    }

    /// How long sessions live.
    pub fn lifetimes(&self) -> crate::console::sessions::Lifetimes {
        crate::console::sessions::Lifetimes {
            idle: Duration::from_secs(self.session_idle_mins.saturating_mul(60)),
            most: Duration::from_secs(self.session_hours.saturating_mul(3600)),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        positive(self.session_idle_mins, "console.session_idle_mins")?;
        positive(self.session_hours, "console.session_hours")?;
        if self.cert.is_some() != self.key.is_some() {
            return Err(ConfigError::Invalid(
                "console.cert and console.key go together: give both or neither".into(),
            ));
        }
        Ok(())
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
    /// The administrator's console.
    #[serde(default)]
    pub console: ConsoleSection,
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
        self.console.validate()?;
        self.tls.insecure_conflict(self.insecure)?;
        required(&self.data_dir, "data_dir", "--data-dir")
    }
}
