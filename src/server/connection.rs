//! The connections the gRPC server answers on: at most so many at once, accepted with
//! `TCP_NODELAY`, over TLS when configured (the handshake done here, off the accept loop),
//! and written so that many small HTTP/2 frames leave in one system call.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo, TcpIncoming};

/// How long a client may take over its TLS handshake before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the server to take them.
const HANDSHAKEN_BUFFER: usize = 64;

/// One accepted client connection.
///
/// It tells HTTP/2 that it has no vectored writes. With them, the `h2` crate writes every
/// DATA frame of 256 bytes or more with its own `writev` (it chains the payload instead of
/// copying it and flushes before the next frame); without them it copies frames under 1 KiB
/// into its write buffer, so the answers of many concurrent requests (a score with its
/// drivers is a few hundred bytes) leave together — over TLS, in one record instead of one
/// per frame. Measured by `cargo bench --bench scoring`.
///
/// It holds one of the server's connection slots until it closes.
#[derive(Debug)]
pub struct Connection {
    stream: Transport,
    /// Given back when the connection closes.
    _slot: OwnedSemaphorePermit,
}

#[derive(Debug)]
enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Accepts connections on `listener`, with `TCP_NODELAY`: without it a response's last small
/// frames wait for the client's delayed ACK, tens of milliseconds per request. With
/// `max_connections` open, the next one waits in the listen backlog until one closes. With
/// `tls`, each connection is served once its handshake succeeds; one that fails or stalls is
/// dropped (and logged) without holding up the others.
pub fn incoming(
    listener: TcpListener,
    max_connections: usize,
    tls: Option<super::tls::ServerTls>,
) -> impl Stream<Item = io::Result<Connection>> {
    let accepted = TcpIncoming::from(listener).with_nodelay(Some(true));
    let slots = Arc::new(Semaphore::new(max_connections));
    let tcp = futures::stream::unfold((accepted, slots), |(mut accepted, slots)| async move {
        // The semaphore is never closed, so a slot always comes.
        let slot = Arc::clone(&slots).acquire_owned().await.ok()?;
        let next = accepted.next().await?;
        Some((next.map(|stream| (stream, slot)), (accepted, slots)))
    });
    match tls {
        None => tcp
            .map(|accepted| {
                accepted.map(|(stream, slot)| Connection {
                    stream: Transport::Plain(stream),
                    _slot: slot,
                })
            })
            .boxed(),
        Some(tls) => handshaken(tcp, tls.0).boxed(),
    }
}

/// The connections of `tcp` once their TLS handshakes succeed, each handshake a task of its own.
fn handshaken(
    tcp: impl Stream<Item = io::Result<(TcpStream, OwnedSemaphorePermit)>> + Send + 'static,
    acceptor: TlsAcceptor,
) -> impl Stream<Item = io::Result<Connection>> {
    let (ready, handshaken) = mpsc::channel(HANDSHAKEN_BUFFER);
    tokio::spawn(async move {
        let mut tcp = std::pin::pin!(tcp);
        while let Some(accepted) = tcp.next().await {
            let ready = ready.clone();
            let (stream, slot) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    if ready.send(Err(error)).await.is_err() {
                        return;
                    }
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let peer = stream.peer_addr().ok();
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        let connection = Connection {
                            stream: Transport::Tls(Box::new(tls)),
                            _slot: slot,
                        };
                        let _ = ready.send(Ok(connection)).await;
                    }
                    Ok(Err(error)) => {
                        tracing::info!(?peer, %error, "TLS handshake refused");
                    }
                    Err(_) => tracing::info!(?peer, "TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(handshaken)
}

impl Connected for Connection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        match &self.stream {
            Transport::Plain(stream) => stream.connect_info(),
            Transport::Tls(stream) => stream.get_ref().0.connect_info(),
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.stream {
            Transport::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.stream {
            Transport::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.stream {
            Transport::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.stream {
            Transport::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        false
    }
}
