//! Every panic in the process is either handled where it happened or ends
//! the node.
//!
//! Supervision ([`crate::supervision`]) catches a panic inside an actor's
//! handlers and the futures it spawned, and restarts the actor. A panic in
//! a blocking job an actor ran ([`run_blocking`]) restarts that actor too.
//! Everything else runs outside any actor: a reply future actix spawns on
//! its own, a task started with `actix_rt::spawn`, a plain thread. A panic
//! there would only end that future, leaving the node running with a piece
//! missing (a caller waiting forever, a loop gone). So a process-wide panic
//! hook counts every panic, the places that handle one count it as handled,
//! and the node supervisor stops the node with exit code 70 when a panic
//! stays unhandled ([`unhandled`]), so the process supervisor starts it
//! afresh from what is on disk.

use std::any::Any;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

static PANICKED: AtomicU64 = AtomicU64::new(0);
static HANDLED: AtomicU64 = AtomicU64::new(0);
static LAST: Mutex<Option<String>> = Mutex::new(None);

/// Installs the hook that counts every panic (and then reports it as
/// the default hook does). Call once, before the node starts.
pub fn install_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICKED.fetch_add(1, Ordering::SeqCst);
        let place = info
            .location()
            .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
        let message = panic_message(info.payload());
        *crate::lock_unpoisoned(&LAST) = Some(format!("{message}{place}"));
        default(info);
    }));
}

/// A panic was caught and handled (its actor restarts).
pub fn handled() {
    HANDLED.fetch_add(1, Ordering::SeqCst);
}

/// Panics counted by the hook and not handled: `Some((how many, the last
/// one's message and place))` if there are any.
pub fn unhandled() -> Option<(u64, String)> {
    let panicked = PANICKED.load(Ordering::SeqCst);
    let handled = HANDLED.load(Ordering::SeqCst);
    (panicked > handled).then(|| {
        let last = crate::lock_unpoisoned(&LAST).clone().unwrap_or_default();
        (panicked - handled, last)
    })
}

/// Why a job on the blocking pool gave no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// It panicked, with this message.
    #[error("a blocking job panicked ({0})")]
    Panicked(String),
    /// The runtime cancelled it (shutting down).
    #[error("a blocking job was cancelled: {0}")]
    Cancelled(String),
}

/// Runs `job` on the blocking pool. If the job panics, the panic counts as
/// handled and `restart` runs (it restarts the job's actor, if its state
/// may be broken), then the error names the panic.
pub async fn run_blocking<T: Send + 'static>(
    restart: impl FnOnce(),
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T, JobError> {
    match tokio::task::spawn_blocking(job).await {
        Ok(value) => Ok(value),
        Err(e) if e.is_panic() => {
            handled();
            restart();
            Err(JobError::Panicked(panic_message(e.into_panic().as_ref())))
        }
        Err(e) => Err(JobError::Cancelled(e.to_string())),
    }
}

/// A panic's message, from its payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
