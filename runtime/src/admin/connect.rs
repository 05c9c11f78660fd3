//! The tool side of the admin socket: send one request, read replies until
//! a final one.

use std::fs::File;
use std::path::Path;

use branchline_actors::wire::{AdminReply, AdminRequest, MAX_REPLY_FRAME, read_frame, write_frame};

/// Why talking to the local node failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminClientError {
    /// No node answers on the socket.
    #[error(
        "cannot reach the local node at {path}: {source} (is the node running with this data_dir?)"
    )]
    Connect {
        /// The socket.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The conversation broke.
    #[error("talking to the local node failed: {0}")]
    Frame(#[from] branchline_actors::wire::FrameError),
    /// The node closed without a final answer.
    #[error("the local node closed the connection without answering")]
    NoAnswer,
}

/// Sends `request` and passes every reply to `on_reply` until it returns
/// `Some` (the final value) or the node closes.
pub async fn request<T>(
    socket: &Path,
    request: &AdminRequest,
    on_reply: impl FnMut(AdminReply) -> Option<T>,
) -> Result<T, AdminClientError> {
    request_with_file(socket, request, None, on_reply).await
}

/// [`request`], passing `file` to the node right after the request (the
/// request must say it passes one: [`AdminRequest::passes_file`]).
pub async fn request_with_file<T>(
    socket: &Path,
    request: &AdminRequest,
    file: Option<&File>,
    mut on_reply: impl FnMut(AdminReply) -> Option<T>,
) -> Result<T, AdminClientError> {
    assert_eq!(
        request.passes_file(),
        file.is_some(),
        "a request passes a file exactly when it says so"
    );
    let mut stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|source| AdminClientError::Connect {
            path: socket.display().to_string(),
            source,
        })?;
    write_frame(&mut stream, request).await?;
    if let Some(file) = file {
        super::pass_file::send(&stream, file)
            .await
            .map_err(|e| AdminClientError::Frame(e.into()))?;
    }
    while let Some(reply) = read_frame::<AdminReply>(&mut stream, MAX_REPLY_FRAME).await? {
        if let Some(done) = on_reply(reply) {
            return Ok(done);
        }
    }
    Err(AdminClientError::NoAnswer)
}
