//! Text a person or a tool hands a node: join tokens, signed URL queries,
//! `Range` headers and file storage paths, lifetimes.
#![no_main]
use std::path::Path;
use std::sync::OnceLock;

use branchline::file_storage::{parse_range, resolve, signed_url};
use branchline::join::token::JoinToken;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(token) = text.parse::<JoinToken>() {
        assert_eq!(token.to_string().parse::<JoinToken>(), Ok(token));
    }
    static KEY: OnceLock<ring::hmac::Key> = OnceLock::new();
    let key = KEY.get_or_init(|| signed_url::key(&[7; 32]));
    let (path, query) = text.split_once('?').unwrap_or((text, ""));
    assert!(signed_url::check(key, path, Some(query), 1_000).is_err() || query.contains("sig="));
    if let Ok((first, last)) = parse_range(text, 1 << 40) {
        assert!(first <= last && last < 1 << 40);
    }
    if let Some(file) = resolve(Path::new("/srv/pkgs"), text) {
        assert!(file.starts_with("/srv/pkgs"));
    }
    let _ = branchline::cli::parse_lifetime(text);
});
