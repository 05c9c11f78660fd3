//! Passing an open file over the admin socket (`SCM_RIGHTS`).
//!
//! `fetch --out` opens its output itself and hands the node the open file,
//! so the path is resolved, created and checked by the command, with the
//! user's own view of the file system: a node sandboxed by its service
//! unit (its own `/tmp`, a read-only `/home`) still writes where the user
//! asked, or the command fails before anything is fetched.

use std::fs::File;
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::AsFd;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use tokio::io::Interest;
use tokio::net::UnixStream;

/// The one byte that carries the file (a message of no bytes carries no
/// ancillary data on a stream socket).
const MARKER: u8 = b'F';

/// Sends `file` to the other end, as one marker byte with the descriptor
/// attached.
pub async fn send(stream: &UnixStream, file: &File) -> std::io::Result<()> {
    let fds = [file.as_fd()];
    loop {
        stream.writable().await?;
        let sent = stream.try_io(Interest::WRITABLE, || {
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
                return Err(std::io::Error::other("no room for the file descriptor"));
            }
            rustix::net::sendmsg(
                stream,
                &[IoSlice::new(&[MARKER])],
                &mut control,
                SendFlags::NOSIGNAL,
            )
            .map_err(std::io::Error::from)
        });
        match sent {
            Ok(1) => return Ok(()),
            Ok(_) => return Err(std::io::Error::other("the file's marker was not sent")),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Receives the file the other end sent with [`send`]. Anything else (a
/// byte without a descriptor, several descriptors, a closed stream) is an
/// error, and any descriptor that came is closed.
pub async fn receive(stream: &UnixStream) -> std::io::Result<File> {
    loop {
        stream.readable().await?;
        let got = stream.try_io(Interest::READABLE, || {
            let mut byte = [0u8; 1];
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut control = RecvAncillaryBuffer::new(&mut space);
            let msg = rustix::net::recvmsg(
                stream,
                &mut [IoSliceMut::new(&mut byte)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            )
            .map_err(std::io::Error::from)?;
            let mut files = Vec::new();
            for message in control.drain() {
                if let RecvAncillaryMessage::ScmRights(fds) = message {
                    files.extend(fds.map(File::from));
                }
            }
            match (msg.bytes, byte[0], files.len()) {
                (0, _, _) => Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the tool closed the connection before passing its output file",
                )),
                (1, MARKER, 1) => Ok(files.pop().expect("one file")),
                (_, _, n) => Err(std::io::Error::other(format!(
                    "expected the output file, got {n} file descriptors"
                ))),
            }
        });
        match got {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    #[tokio::test]
    async fn a_file_passes_and_its_writes_land_in_the_senders_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let mine = File::create_new(&path).unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        send(&a, &mine).await.unwrap();
        let mut theirs = receive(&b).await.unwrap();
        theirs.write_all(b"written by the node").unwrap();
        let mut back = String::new();
        let mut reread = File::open(&path).unwrap();
        reread.rewind().unwrap();
        reread.read_to_string(&mut back).unwrap();
        assert_eq!(back, "written by the node");
    }

    #[tokio::test]
    async fn a_byte_without_a_file_or_a_hang_up_is_refused() {
        let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.write_all(b"F").unwrap();
        b.set_nonblocking(true).unwrap();
        let b = UnixStream::from_std(b).unwrap();
        let err = receive(&b).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected the output file, got 0 file descriptors"
        );
        drop(a);
        let err = receive(&b).await.unwrap_err();
        assert!(err.to_string().contains("closed the connection"), "{err}");
    }
}
