//! HTTPS: a rustls (aws-lc-rs) listener for the serve loop, whose connections do their
//! handshake on first use, within the header read timeout and under the connection cap.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;
use tokio_rustls::server::TlsStream;
use tokio_rustls::{Accept, TlsAcceptor};

use crate::config::ConfigError;

/// The rustls server configuration of a PEM certificate chain and private key.
pub(super) fn server_config(
    cert: &Path,
    key: &Path,
) -> Result<Arc<rustls::ServerConfig>, ConfigError> {
    let bad = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
        ConfigError::because(format!("{what} {}", path.display()), e.to_string())
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad("cannot read the TLS certificate", cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("invalid TLS certificate", cert, &e))?;
    if certs.is_empty() {
        return Err(ConfigError::new(format!(
            "no certificate in {}",
            cert.display()
        )));
    }
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| bad("cannot read the TLS key", key, &e))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::because("TLS", e))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| ConfigError::because("TLS certificate and key do not fit", e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepted TCP connections whose TLS handshake is done by the connection itself, on its
/// first read: so the serve loop's header timeout and connection cap cover the handshake,
/// and one slow client cannot hold up the others.
pub(super) struct TlsListener {
    listener: TcpListener,
    addr: SocketAddr,
    tls: TlsAcceptor,
}

impl TlsListener {
    /// Accepts on `listener`.
    pub(super) fn new(
        listener: TcpListener,
        addr: SocketAddr,
        config: Arc<rustls::ServerConfig>,
    ) -> Self {
        TlsListener {
            listener,
            addr,
            tls: TlsAcceptor::from(config),
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = LazyTls;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.listener.accept().await {
                Ok((tcp, peer)) => {
                    let state = State::Handshake(Box::new(self.tls.accept(tcp)));
                    return (LazyTls { state, peer }, peer);
                }
                Err(e) => {
                    // Out of file descriptors, most likely: give connections time to close.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

enum State {
    Handshake(Box<Accept<TcpStream>>),
    Ready(Box<TlsStream<TcpStream>>),
    Failed,
}

/// A TLS server connection that does its handshake on first use.
pub(super) struct LazyTls {
    state: State,
    peer: SocketAddr,
}

impl LazyTls {
    /// Drives the handshake; ready once the stream can carry data.
    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if let State::Handshake(accept) = &mut self.state {
            match Pin::new(accept.as_mut()).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(stream)) => self.state = State::Ready(Box::new(stream)),
                Poll::Ready(Err(e)) => {
                    tracing::debug!(error = %e, peer = %self.peer, "TLS handshake failed");
                    self.state = State::Failed;
                }
            }
        }
        match self.state {
            State::Ready(_) => Poll::Ready(Ok(())),
            _ => Poll::Ready(Err(handshake_failed())),
        }
    }
}

/// The error of a connection whose handshake failed.
fn handshake_failed() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        "TLS handshake failed",
    )
}

impl AsyncRead for LazyTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_handshake(cx))?;
        match &mut this.state {
            State::Ready(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            _ => Poll::Ready(Err(handshake_failed())),
        }
    }
}

impl AsyncWrite for LazyTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_handshake(cx))?;
        match &mut this.state {
            State::Ready(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            _ => Poll::Ready(Err(handshake_failed())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().state {
            State::Ready(s) => Pin::new(s.as_mut()).poll_flush(cx),
            _ => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().state {
            State::Ready(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            _ => Poll::Ready(Ok(())),
        }
    }
}
