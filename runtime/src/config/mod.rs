//! Configuration of the server and the client: TOML files, every key
//! optional but a few, unknown keys refused, and command line flags that
//! override the file so a node can be started from a script without one.
//!
//! Every error is one line that names the file, the line and the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Default control port of the server (the manual's server message port).
pub const DEFAULT_CONTROL_PORT: u16 = 34323;
/// Default foreground data port of clients (the manual's in-office data port).
pub const DEFAULT_FOREGROUND_PORT: u16 = 34760;
/// The background (between offices) data port of the reference manual.
pub const DEFAULT_BACKGROUND_PORT: u16 = 34750;
/// Default port of the embedded file storage (HTTP).
pub const DEFAULT_FILE_STORAGE_PORT: u16 = 34380;
/// Default port of the administrator's console (HTTPS).
pub const DEFAULT_CONSOLE_PORT: u16 = 34390;

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

mod client;
mod server;

pub use client::{
    BackgroundSection, CacheSection, ChassisSetting, ClientConfig, ClientSettings,
    DEFAULT_DISCOVERY_PORT, DEFAULT_RESERVE_MIB, DiscoverySection, ElectionSection, LimitsSection,
    OsSetting, TransferSection,
};
pub use server::{
    ConsoleSection, ControlSection, FileStorageSection, RegistrySection, ServerConfig,
};

#[cfg(test)]
mod tests;
