//! The listener: TLS on every accepted connection, then HTTP/1.1, each connection in its own
//! task, all of them ended by the server's cancellation token. Shared by the fake API server
//! and the fake Keycloak.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use openssl::ssl::{Ssl, SslAcceptor};
use tokio::net::{TcpListener, TcpStream};
use tokio_openssl::SslStream;
use tokio_util::sync::CancellationToken;

use crate::api::Body;

/// What a server does with connections: when to stop, whether to play dead, what to answer.
pub(crate) trait Handler: Clone + Send + Sync + 'static {
    /// Whether to accept connections and say nothing, like an endpoint behind a firewall
    /// that drops packets.
    fn is_blackholed(&self) -> bool {
        false
    }

    /// Answers one request (on a clone of the handler, so the answer owns what it uses).
    fn handle(
        self,
        req: Request<Incoming>,
    ) -> impl Future<Output = Result<Response<Body>, Infallible>> + Send + 'static;
}

/// Accepts connections until `cancel` fires.
pub(crate) async fn serve<H: Handler>(
    listener: TcpListener,
    acceptor: Arc<SslAcceptor>,
    cancel: CancellationToken,
    handler: H,
) {
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, _)) => {
                tokio::spawn(connection(
                    tcp,
                    acceptor.clone(),
                    cancel.clone(),
                    handler.clone(),
                ));
            }
            // Out of file descriptors and the like: let some connections close first.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Serves one connection until either side ends it or the server stops.
async fn connection<H: Handler>(
    tcp: TcpStream,
    acceptor: Arc<SslAcceptor>,
    cancel: CancellationToken,
    handler: H,
) {
    if handler.is_blackholed() {
        // Accept the TCP connection (the kernel already has) and say nothing, not even the
        // TLS handshake.
        cancel.cancelled().await;
        return;
    }
    // Watch events are small writes that must not wait for Nagle's algorithm.
    let _ = tcp.set_nodelay(true);
    let serve = async {
        let mut stream = SslStream::new(Ssl::new(acceptor.context()).ok()?, tcp).ok()?;
        Pin::new(&mut stream).accept().await.ok()?;
        let service = service_fn(move |req| handler.clone().handle(req));
        hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await
            .ok()
    };
    tokio::select! {
        () = cancel.cancelled() => {}
        _ = serve => {}
    }
}
