//! A fault switch for tests, compiled into debug builds only, so tests can
//! run a misbehaving peer through the real protocol. With
//! `BRANCHLINE_TEST_SERVE_FAULT` in its environment, a node serves pieces
//! wrongly: `corrupt` flips one byte of every piece it serves (a lying
//! peer); `busy` refuses every piece as busy while it still claims to hold
//! them (a holder that never delivers). Release builds have no such switch.

use std::sync::OnceLock;

use branchline_actors::wire::Refusal;

/// The variable that turns the fault on.
pub const SERVE_FAULT: &str = "BRANCHLINE_TEST_SERVE_FAULT";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    Corrupt,
    Busy,
}

fn fault() -> Fault {
    static FAULT: OnceLock<Fault> = OnceLock::new();
    *FAULT.get_or_init(|| {
        let fault = match std::env::var(SERVE_FAULT).as_deref() {
            Ok("corrupt") => Fault::Corrupt,
            Ok("busy") => Fault::Busy,
            _ => Fault::None,
        };
        if fault != Fault::None {
            tracing::warn!(
                "{SERVE_FAULT} is set: this node serves every piece wrongly (test fault switch)"
            );
        }
        fault
    })
}

/// What the node serves for a piece read as `read`, with the fault applied.
pub fn served(read: Result<Vec<u8>, Refusal>) -> Result<Vec<u8>, Refusal> {
    match (fault(), read) {
        (Fault::Corrupt, Ok(mut bytes)) if !bytes.is_empty() => {
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x5a;
            Ok(bytes)
        }
        (Fault::Busy, Ok(_)) => Err(Refusal::Busy),
        (_, read) => read,
    }
}
