//! The TCP connections the gRPC server answers on: at most so many at once, accepted with
//! `TCP_NODELAY`, and written so that many small HTTP/2 frames leave in one system call.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::{Connected, TcpConnectInfo, TcpIncoming};

/// One accepted client connection.
///
/// It tells HTTP/2 that it has no vectored writes. With them, the `h2` crate writes every
/// DATA frame of 256 bytes or more with its own `writev` (it chains the payload instead of
/// copying it and flushes before the next frame); without them it copies frames under 1 KiB
/// into its write buffer, so the answers of many concurrent requests (a score with its
/// drivers is a few hundred bytes) leave together. Measured by `cargo bench --bench scoring`.
///
/// It holds one of the server's connection slots until it closes.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    /// Given back when the connection closes.
    _slot: OwnedSemaphorePermit,
}

/// Accepts connections on `listener`, with `TCP_NODELAY`: without it a response's last small
/// frames wait for the client's delayed ACK, tens of milliseconds per request. With
/// `max_connections` open, the next one waits in the listen backlog until one closes.
pub fn incoming(
    listener: TcpListener,
    max_connections: usize,
) -> impl Stream<Item = io::Result<Connection>> {
    let accepted = TcpIncoming::from(listener).with_nodelay(Some(true));
    let slots = Arc::new(Semaphore::new(max_connections));
    futures::stream::unfold((accepted, slots), |(mut accepted, slots)| async move {
        // The semaphore is never closed, so a slot always comes.
        let slot = Arc::clone(&slots).acquire_owned().await.ok()?;
        let next = accepted.next().await?;
        let connection = next.map(|stream| Connection {
            stream,
            _slot: slot,
        });
        Some((connection, (accepted, slots)))
    })
}

impl Connected for Connection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        false
    }
}
