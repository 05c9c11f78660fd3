//! Logging: tracing to stderr, as text or JSON lines, filtered by the
//! config's level unless `RUST_LOG` is set. The filter can be changed while
//! the node runs (the debug shell's `log`).

use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Registry, fmt, reload};

use crate::config::{LogFormat, LogSection};

/// The live filter of the process's subscriber.
static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Installs the process's subscriber. A second call (the demo starts many
/// nodes in one process) keeps the first.
pub fn init(log: &LogSection) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let text = fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    let installed = match log.format {
        LogFormat::Text => tracing_subscriber::registry()
            .with(filter)
            .with(text)
            .try_init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(filter)
            .with(text.json())
            .try_init(),
    };
    if installed.is_ok() {
        let _ = FILTER.set(handle);
    }
}

/// Replaces the filter of the running process, e.g. `debug` or
/// `branchline_actors=debug,info`.
pub fn set_filter(filter: &str) -> Result<(), String> {
    let parsed = EnvFilter::try_new(filter).map_err(|e| format!("`{filter}`: {e}"))?;
    FILTER
        .get()
        .ok_or_else(|| "logging is not set up in this process".to_owned())?
        .reload(parsed)
        .map_err(|e| e.to_string())
}

/// Checks a filter before anything starts, so a bad level is a config error.
pub fn check_level(level: &str) -> Result<(), String> {
    EnvFilter::try_new(level)
        .map(|_| ())
        .map_err(|e| format!("invalid config: log.level `{level}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_filter_is_refused_with_its_text() {
        let err = set_filter("info,=[").unwrap_err();
        assert!(err.starts_with("`info,=[`"), "{err}");
        assert!(check_level("nonsense=[").is_err());
    }
}
