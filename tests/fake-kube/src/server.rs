//! The listener: TLS on every accepted connection, then HTTP/1.1, each connection in its own
//! task, all of them ended by the server's cancellation token.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use openssl::ssl::{Ssl, SslAcceptor};
use tokio::net::{TcpListener, TcpStream};
use tokio_openssl::SslStream;

use crate::{Shared, api};

/// Accepts connections until the server is cancelled.
pub(crate) async fn serve(listener: TcpListener, acceptor: Arc<SslAcceptor>, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            () = shared.cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, _)) => {
                tokio::spawn(connection(tcp, acceptor.clone(), shared.clone()));
            }
            // Out of file descriptors and the like: let some connections close first.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Serves one connection until either side ends it or the server stops.
async fn connection(tcp: TcpStream, acceptor: Arc<SslAcceptor>, shared: Arc<Shared>) {
    let cancel = shared.cancel.clone();
    if shared.blackhole.load(Ordering::SeqCst) {
        // Accept the TCP connection (the kernel already has) and say nothing, not even the
        // TLS handshake: what a client sees behind a firewall that drops packets.
        cancel.cancelled().await;
        return;
    }
    // Watch events are small writes that must not wait for Nagle's algorithm.
    let _ = tcp.set_nodelay(true);
    let serve = async {
        let mut stream = SslStream::new(Ssl::new(acceptor.context()).ok()?, tcp).ok()?;
        Pin::new(&mut stream).accept().await.ok()?;
        let service = service_fn(move |req| api::handle(shared.clone(), req));
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
