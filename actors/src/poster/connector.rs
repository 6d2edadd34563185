//! The poster's TCP connections: awc's own connector (actix-tls, the system resolver), with each
//! plain-HTTP connection wrapped in a [`FramedStream`] that lets awc read close-delimited
//! HTTP/1.1 bodies (see `super::framing`). An `https` connection is wrapped too but passes
//! every byte unchanged: awc layers TLS above this connector, so the wrapper would only see
//! ciphertext (TLS terminators re-frame such bodies anyway).

use super::framing::ResponseFraming;
use actix_rt::net::{ActixStream, Ready, TcpStream};
use actix_service::Service;
use actix_tls::connect::{ConnectError, ConnectInfo, Connection, ConnectorService, Resolver};
use futures_util::future::LocalBoxFuture;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes read from the socket at a time.
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// awc's TCP connector, handing out [`FramedStream`]s.
#[derive(Clone)]
pub struct FramingConnector {
    inner: ConnectorService,
}

impl FramingConnector {
    pub fn new() -> FramingConnector {
        FramingConnector {
            inner: actix_tls::connect::Connector::new(Resolver::default()).service(),
        }
    }
}

impl Default for FramingConnector {
    fn default() -> Self {
        FramingConnector::new()
    }
}

impl Service<ConnectInfo<awc::http::Uri>> for FramingConnector {
    type Response = Connection<awc::http::Uri, FramedStream>;
    type Error = ConnectError;
    type Future = LocalBoxFuture<'static, Result<Self::Response, ConnectError>>;

    actix_service::always_ready!();

    fn call(&self, req: ConnectInfo<awc::http::Uri>) -> Self::Future {
        let tls = req.request().scheme_str() == Some("https");
        let connecting = self.inner.call(req);
        Box::pin(async move {
            let (tcp, connection) = connecting.await?.replace_io(());
            let framing = if tls {
                ResponseFraming::passthrough()
            } else {
                ResponseFraming::new()
            };
            Ok(connection
                .replace_io(FramedStream {
                    inner: tcp,
                    framing,
                    out: Vec::new(),
                    out_pos: 0,
                    eof: false,
                })
                .1)
        })
    }
}

/// A TCP stream whose response bytes pass through a `ResponseFraming`.
#[derive(Debug)]
pub struct FramedStream {
    inner: TcpStream,
    framing: ResponseFraming,
    /// Bytes released by the framing and not yet read by awc.
    out: Vec<u8>,
    /// How much of `out` was read.
    out_pos: usize,
    /// The server closed its side.
    eof: bool,
}

impl AsyncRead for FramedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.out_pos < this.out.len() {
                let n = buf.remaining().min(this.out.len() - this.out_pos);
                buf.put_slice(&this.out[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                if this.out_pos == this.out.len() {
                    this.out.clear();
                    this.out_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; READ_CHUNK_BYTES];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                this.eof = true;
                this.framing.finish(&mut this.out);
            } else {
                this.framing.feed(read.filled(), &mut this.out);
            }
        }
    }
}

impl AsyncWrite for FramedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        if written > 0 {
            this.framing.request_written();
        }
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl ActixStream for FramedStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        if self.out_pos < self.out.len() {
            return Poll::Ready(Ok(Ready::READABLE));
        }
        ActixStream::poll_read_ready(&self.inner, cx)
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        ActixStream::poll_write_ready(&self.inner, cx)
    }
}
