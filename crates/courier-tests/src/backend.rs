//! Backends for the channel's tests (name resolution, load balancing,
//! connectivity state): an Echo server that keeps its port while it is
//! stopped, killed and restarted; a service whose calls wait until the test
//! releases them; and a TCP relay that counts the connections through it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use courier::{Request, Response, Status};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Notify, oneshot, watch};

use crate::{Counters, Echo, EchoRequest, EchoResponse, EchoServer, ResponseStream, WAIT_LIMIT, echo_with};

/// A TCP socket that may share its port with the others made here
/// (`SO_REUSEPORT`), and only with them.
fn port_sharing_socket() -> TcpSocket {
    let socket = TcpSocket::new_v4().expect("a TCP socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket.set_reuseport(true).expect("SO_REUSEPORT");
    socket
}

/// An Echo server on a loopback port that stays its own while the server
/// is down: a socket bound to the port and never listening holds it, so
/// while no server runs, connections are refused and no other test's
/// server can take the port. The server can be stopped gracefully, killed,
/// and started again on the same port. Its [`Counters`] live across
/// restarts: `started` counts the calls it has served.
pub struct Backend {
    /// The port's address.
    pub addr: SocketAddr,
    /// The Echo service's counters, shared by every run of the server.
    pub counters: Arc<Counters>,
    _holder: TcpSocket,
    running: Option<Running>,
}

struct Running {
    shutdown: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Backend {
    /// Reserves a port, with no server yet: connecting is refused.
    pub fn new() -> Backend {
        let holder = port_sharing_socket();
        holder
            .bind("127.0.0.1:0".parse().unwrap())
            .expect("bind an ephemeral port");
        let addr = holder.local_addr().expect("the bound address");
        Backend {
            addr,
            counters: Arc::new(Counters::default()),
            _holder: holder,
            running: None,
        }
    }

    /// A backend that serves at once.
    pub fn start() -> Backend {
        let mut backend = Backend::new();
        backend.serve();
        backend
    }

    /// A socket listening on the backend's port, with no server reading
    /// it: the kernel completes connections to it, and they wait there for
    /// the HTTP/2 handshake. Give it to [`Backend::serve_on`] to serve them.
    pub fn listen(&self) -> TcpListener {
        let socket = port_sharing_socket();
        socket.bind(self.addr).expect("bind the backend's port");
        socket.listen(1024).expect("listen")
    }

    /// Starts the server on the backend's port.
    pub fn serve(&mut self) {
        let listener = self.listen();
        self.serve_on(listener);
    }

    /// Starts the server on `listener`, one of [`Backend::listen`]'s.
    pub fn serve_on(&mut self, listener: TcpListener) {
        assert!(self.running.is_none(), "backend {} is already serving", self.addr);
        let (tx, rx) = oneshot::channel::<()>();
        let server = courier::Server::builder()
            .add_service(echo_with(self.counters.clone()))
            .serve_with_listener(listener, async {
                let _ = rx.await;
            });
        self.running = Some(Running {
            shutdown: tx,
            task: tokio::spawn(server),
        });
    }

    /// Whether a server runs now.
    pub fn is_serving(&self) -> bool {
        self.running.is_some()
    }

    /// Shuts the server down gracefully (it stops accepting, sends GOAWAY
    /// and lets calls in flight finish) and waits until it has.
    pub async fn stop(&mut self) {
        let running = self.running.take().expect("the backend is serving");
        let _ = running.shutdown.send(());
        running.task.await.expect("the server task").expect("the server");
    }

    /// Kills the server: its task, listener and connections are dropped
    /// with no GOAWAY, and calls in flight on it fail.
    pub async fn kill(&mut self) {
        let running = self.running.take().expect("the backend is serving");
        running.task.abort();
        let _ = running.task.await;
    }

    /// Waits, while no server runs, for a client to dial the port, and
    /// closes that connection before the HTTP/2 handshake: the client's
    /// attempt fails. A channel dials again only once it knows its last
    /// connection here is gone, so this is how a test learns that a channel
    /// noticed a [`kill`](Backend::kill). Panics after [`WAIT_LIMIT`].
    pub async fn wait_for_dial(&self) {
        assert!(self.running.is_none(), "backend {} is serving", self.addr);
        let listener = self.listen();
        match tokio::time::timeout(WAIT_LIMIT, listener.accept()).await {
            Ok(accepted) => drop(accepted.expect("accept")),
            Err(_) => panic!("no client dialled {} within {WAIT_LIMIT:?}", self.addr),
        }
    }

    /// The calls served so far, by every run of the server.
    pub fn calls(&self) -> usize {
        self.counters.started.load(Ordering::SeqCst)
    }
}

impl Default for Backend {
    fn default() -> Backend {
        Backend::new()
    }
}

/// `ipv4:` target listing the backends' addresses, in order.
pub fn ipv4_target(backends: &[&Backend]) -> String {
    let list: Vec<String> = backends.iter().map(|b| b.addr.to_string()).collect();
    format!("ipv4:{}", list.join(","))
}

/// Counts of the calls of a [`Gated`] service: how many started, how many
/// run now and the most that ever ran at once. Calls wait until released.
#[derive(Debug)]
pub struct Gate {
    started: AtomicUsize,
    running: AtomicUsize,
    most: AtomicUsize,
    changed: Notify,
    release: tokio::sync::Semaphore,
}

impl Default for Gate {
    fn default() -> Gate {
        Gate {
            started: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
            changed: Notify::new(),
            release: tokio::sync::Semaphore::new(0),
        }
    }
}

impl Gate {
    /// Lets `n` waiting (or future) calls finish.
    pub fn release(&self, n: usize) {
        self.release.add_permits(n);
    }

    /// Calls started so far.
    pub fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    /// Calls running now: started and not released.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// The most calls that ever ran at once.
    pub fn most(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }

    /// Waits until at most `n` calls run (the others finished or were
    /// cancelled); panics after [`WAIT_LIMIT`].
    pub async fn wait_running_at_most(&self, n: usize) {
        let wait = async {
            loop {
                let changed = self.changed.notified();
                let mut changed = std::pin::pin!(changed);
                changed.as_mut().enable();
                if self.running() <= n {
                    return;
                }
                changed.await;
            }
        };
        if tokio::time::timeout(WAIT_LIMIT, wait).await.is_err() {
            panic!(
                "at most {n} gated calls running: not within {WAIT_LIMIT:?} (running {})",
                self.running()
            );
        }
    }

    /// Waits until at least `n` calls have started; panics after
    /// [`WAIT_LIMIT`].
    pub async fn wait_started(&self, n: usize) {
        let wait = async {
            loop {
                let changed = self.changed.notified();
                let mut changed = std::pin::pin!(changed);
                changed.as_mut().enable();
                if self.started() >= n {
                    return;
                }
                changed.await;
            }
        };
        if tokio::time::timeout(WAIT_LIMIT, wait).await.is_err() {
            panic!(
                "{n} gated calls started: not within {WAIT_LIMIT:?} (started {}, running {})",
                self.started(),
                self.running()
            );
        }
    }
}

/// Counts a gated call as running until dropped (finished or cancelled).
struct InGate<'a>(&'a Gate);

impl Drop for InGate<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }
}

/// An Echo service whose Unary calls wait until their [`Gate`] releases
/// them, then echo the text. The other methods are left unimplemented.
#[derive(Clone, Default)]
pub struct Gated(pub Arc<Gate>);

impl Gated {
    /// The service, to add to a server.
    pub fn server(gate: Arc<Gate>) -> EchoServer<Gated> {
        EchoServer::new(Gated(gate))
    }
}

impl Echo for Gated {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        let gate = &self.0;
        let now = gate.running.fetch_add(1, Ordering::SeqCst) + 1;
        gate.most.fetch_max(now, Ordering::SeqCst);
        gate.started.fetch_add(1, Ordering::SeqCst);
        gate.changed.notify_waiters();
        let _in = InGate(gate);
        gate.release.acquire().await.expect("the gate is never closed").forget();
        Ok(Response::new(EchoResponse {
            text: request.get_ref().text.clone(),
            ..Default::default()
        }))
    }

    type ServerStreamStream = ResponseStream;
    type BidiStream = ResponseStream;
}

/// Copies `from` to `to` until either ends, dropping what arrives while
/// `silent` is true.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    silent: watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if *silent.borrow() {
                    continue;
                }
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// A TCP relay on a loopback port to `upstream`, which counts the
/// connections through it: those accepted, and those open now (a
/// connection closes here once both its ends have).
pub struct Relay {
    /// Where the relay listens.
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    open: watch::Receiver<usize>,
    /// While true, bytes are read from both ends and thrown away: each
    /// side's peer looks alive to the kernel but says nothing.
    silenced: watch::Sender<bool>,
    _task: crate::AbortOnDrop,
}

impl Relay {
    /// Starts relaying connections to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the relay");
        let addr = listener.local_addr().expect("the relay's address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let (open_tx, open) = watch::channel(0usize);
        let open_tx = Arc::new(open_tx);
        let counted = accepted.clone();
        let (silenced, silent) = watch::channel(false);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                open_tx.send_modify(|n| *n += 1);
                let open_tx = open_tx.clone();
                let silent = silent.clone();
                tokio::spawn(async move {
                    if let Ok(server) = tokio::net::TcpStream::connect(upstream).await {
                        let (client_read, client_write) = client.into_split();
                        let (server_read, server_write) = server.into_split();
                        // Either direction ending ends the connection.
                        tokio::select! {
                            _ = pipe(client_read, server_write, silent.clone()) => {}
                            _ = pipe(server_read, client_write, silent) => {}
                        }
                    }
                    open_tx.send_modify(|n| *n -= 1);
                });
            }
        });
        Relay {
            addr,
            accepted,
            open,
            silenced,
            _task: crate::AbortOnDrop(task.abort_handle()),
        }
    }

    /// From now on, throws away every byte either side sends, as a network
    /// that silently drops packets would (a half-open connection): only
    /// the end of a connection still passes.
    pub fn silence(&self) {
        self.silenced.send_replace(true);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        *self.open.borrow()
    }

    /// Waits until exactly `n` connections are open; panics after
    /// [`WAIT_LIMIT`].
    pub async fn wait_open(&self, n: usize) {
        let mut open = self.open.clone();
        let wait = open.wait_for(|open| *open == n);
        match tokio::time::timeout(WAIT_LIMIT, wait).await {
            Ok(result) => {
                result.expect("the relay runs");
            }
            Err(_) => panic!("{n} connections open: not within {WAIT_LIMIT:?} (open {})", self.open()),
        }
    }
}
