//! A peer that drops packets: a loopback listener that never accepts, whose accept queue is
//! full, so the kernel drops every further SYN and a client's connect hangs until its own
//! timeout, as with a firewalled or vanished endpoint (not a refused one).

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

/// The listener and the connections that fill its queue; the address drops SYNs while this
/// lives.
pub(crate) struct Blackhole {
    pub(crate) addr: SocketAddr,
    _listener: Socket,
    _queued: Vec<TcpStream>,
}

impl Blackhole {
    /// Binds a listener with the smallest backlog, fills its queue, and checks that a further
    /// connect now times out.
    pub(crate) fn start() -> Blackhole {
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
        let any: SocketAddr = "127.0.0.1:0".parse().expect("an address");
        listener.bind(&any.into()).expect("binds");
        listener.listen(0).expect("listens");
        let addr = listener
            .local_addr()
            .expect("an address")
            .as_socket()
            .expect("an IP address");
        let mut queued = Vec::new();
        for _ in 0..16 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(stream) => queued.push(stream),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return Blackhole {
                        addr,
                        _listener: listener,
                        _queued: queued,
                    };
                }
                Err(e) => panic!("filling the blackhole's queue: {e}"),
            }
        }
        panic!("the accept queue of {addr} never filled: SYNs are not dropped here");
    }

    /// `127.0.0.1:PORT`.
    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }
}
