//! The TCP connections the gRPC server answers on: accepted with `TCP_NODELAY`, and written
//! so that many small HTTP/2 frames leave in one system call.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tonic::transport::server::{Connected, TcpConnectInfo, TcpIncoming};

/// One accepted client connection.
///
/// It tells HTTP/2 that it has no vectored writes. With them, the `h2` crate writes every
/// DATA frame of 256 bytes or more with its own `writev` (it chains the payload instead of
/// copying it and flushes before the next frame); without them it copies frames under 1 KiB
/// into its write buffer, so the answers of many concurrent requests (a score with its
/// drivers is a few hundred bytes) leave together. Measured by `cargo bench --bench scoring`.
#[derive(Debug)]
pub struct Connection(TcpStream);

/// Accepts connections on `listener`, with `TCP_NODELAY`: without it a response's last small
/// frames wait for the client's delayed ACK, tens of milliseconds per request.
pub fn incoming(listener: TcpListener) -> impl Stream<Item = io::Result<Connection>> {
    TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .map(|accepted| accepted.map(Connection))
}

impl Connected for Connection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.0.connect_info()
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        false
    }
}
