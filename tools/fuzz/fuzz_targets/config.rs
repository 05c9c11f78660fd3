//! The TOML configs of both nodes: parsed, then validated.
#![no_main]
use std::path::Path;

use branchline::config::{ClientConfig, ServerConfig, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = parse::<ServerConfig>(text, Path::new("server.toml")) {
        let _ = config.validate();
    }
    if let Ok(config) = parse::<ClientConfig>(text, Path::new("client.toml")) {
        let _ = config.validate();
    }
});
