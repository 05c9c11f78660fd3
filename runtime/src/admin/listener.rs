//! Binding the admin socket and serving its connections.
//!
//! The socket is local (a Unix socket in the data directory, mode 0600),
//! and each connection's peer credentials are checked as well: only the
//! node's own user and root are served, even if someone loosens the file's
//! mode.

use std::fs::File;
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use branchline_actors::wire::{AdminReply, AdminRequest, MAX_REPLY_FRAME, read_frame, write_frame};
use tokio::net::UnixStream;

use super::pass_file;

/// How long a tool has to send its request (a publish carries a manifest
/// of up to 40 MiB; the socket is local).
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// Bytes read and dropped from a refused connection.
const REFUSED_DRAIN: usize = 64 * 1024;

/// Why the admin socket could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum AdminBindError {
    /// A node already answers on this socket.
    #[error("another node is running with this data directory (its admin socket {0} answers)")]
    InUse(String),
    /// The OS refused.
    #[error("cannot create the admin socket {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Binds the admin socket (mode 0600). Must be called before the runtime
/// starts; returns a std listener to hand to the runtime.
pub fn bind(path: &Path) -> Result<std::os::unix::net::UnixListener, AdminBindError> {
    let io = |source| AdminBindError::Io {
        path: path.display().to_string(),
        source,
    };
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(AdminBindError::InUse(path.display().to_string()));
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    let listener = std::os::unix::net::UnixListener::bind(path).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    listener.set_nonblocking(true).map_err(io)?;
    Ok(listener)
}

/// Where replies to one request go. A handler may send several (progress).
pub struct Replies {
    stream: UnixStream,
}

impl Replies {
    /// Sends one reply; false if the tool went away.
    pub async fn send(&mut self, reply: &AdminReply) -> bool {
        write_frame(&mut self.stream, reply).await.is_ok()
    }
}

/// Whether the process at the other end may use the admin socket: it runs
/// as the node's user or as root.
fn allowed(stream: &UnixStream) -> Result<(), String> {
    let theirs = stream
        .peer_cred()
        .map_err(|e| format!("cannot read the admin client's credentials: {e}"))?
        .uid();
    let ours = rustix::process::geteuid().as_raw();
    match theirs == ours || theirs == 0 {
        true => Ok(()),
        false => Err(format!(
            "user {theirs} may not use this node's admin socket (only user {ours} and root)"
        )),
    }
}

/// Serves the admin socket: each connection carries one request, answered
/// by `handle`, with the file the tool passed after it if the request says
/// it passes one ([`AdminRequest::passes_file`]).
pub async fn serve<H, F>(listener: std::os::unix::net::UnixListener, handle: H)
where
    H: Fn(AdminRequest, Option<File>, Replies) -> F + 'static,
    F: Future<Output = ()>,
{
    let listener = match tokio::net::UnixListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "admin socket unusable");
            return;
        }
    };
    let handle = Rc::new(handle);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };

        let handle = handle.clone();
        actix_rt::spawn(async move {
            // Who is asking, before anything they send is read.
            if let Err(refused) = allowed(&stream) {
                refuse(stream, refused).await;
                return;
            }
            answer(stream, &*handle).await;
        });
    }
}

/// Tells a connection of someone else why it is refused. What the tool
/// already sent is taken first (a little, for a short while), so it reads
/// the reason rather than a broken pipe.
async fn refuse(mut stream: UnixStream, refused: String) {
    tracing::warn!(%refused, "refused an admin connection");
    let _ = write_frame(&mut stream, &AdminReply::Error(refused)).await;
    let mut sink = [0u8; 4096];
    let drain = async {
        let mut left = REFUSED_DRAIN;
        while left > 0 {
            match tokio::io::AsyncReadExt::read(&mut stream, &mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
}

/// Reads one request (within the deadline), takes the output file it
/// passes if it passes one, and has `handle` answer it; a bad request is
/// answered with why.
async fn answer<H, F>(mut stream: UnixStream, handle: &H)
where
    H: Fn(AdminRequest, Option<File>, Replies) -> F,
    F: Future<Output = ()>,
{
    let Ok(request) = tokio::time::timeout(
        REQUEST_DEADLINE,
        read_frame::<AdminRequest>(&mut stream, MAX_REPLY_FRAME),
    )
    .await
    else {
        return;
    };
    let error = match request {
        Ok(Some(request)) if request.passes_file() => {
            let passed = tokio::time::timeout(REQUEST_DEADLINE, pass_file::receive(&stream))
                .await
                .unwrap_or_else(|_| {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the tool did not pass its output file",
                    ))
                });
            match passed {
                Ok(file) => return handle(request, Some(file), Replies { stream }).await,
                Err(e) => e.to_string(),
            }
        }
        Ok(Some(request)) => return handle(request, None, Replies { stream }).await,
        Ok(None) => return,
        Err(e) => e.to_string(),
    };
    let reply = AdminReply::Error(format!("bad admin request: {error}"));
    let _ = write_frame(&mut stream, &reply).await;
}
