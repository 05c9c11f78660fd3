//! A fault switch for tests, compiled into debug builds only: with
//! `BRANCHLINE_TEST_SERVE_CORRUPT=1` in its environment, a node flips one
//! byte of every piece it serves, so tests can run a lying peer through
//! the real protocol. Release builds have no such switch.

use std::sync::OnceLock;

/// The variable that turns the fault on.
pub const SERVE_CORRUPT: &str = "BRANCHLINE_TEST_SERVE_CORRUPT";

/// `bytes`, with its middle byte flipped if the switch is on.
pub fn served(mut bytes: Vec<u8>) -> Vec<u8> {
    static ON: OnceLock<bool> = OnceLock::new();
    let on = *ON.get_or_init(|| {
        let on = std::env::var_os(SERVE_CORRUPT).is_some_and(|v| v == "1");
        if on {
            tracing::warn!(
                "{SERVE_CORRUPT}=1: this node corrupts every piece it serves (test fault switch)"
            );
        }
        on
    });
    if on && !bytes.is_empty() {
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x5a;
    }
    bytes
}
