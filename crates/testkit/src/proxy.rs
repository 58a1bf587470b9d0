//! A TCP proxy on `127.0.0.1:0` in front of one or more backends: a load balancer for
//! several auth service instances, or a cable to PostgreSQL that a test can cut.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long the proxy waits for a client's first bytes (HTTP and PostgreSQL clients both
/// speak first).
const FIRST_BYTES: Duration = Duration::from_secs(10);

/// A TCP proxy. Each connection goes to one backend, chosen when the client's first bytes
/// arrive: connections whose first line (up to `?`, at most 64 bytes) is the same are
/// spread round-robin over the backends, each kind with its own counter, so that for
/// example the feed connections of several verifiers started one after another land on
/// different backends. A backend that refuses the connection is skipped.
///
/// [`TcpProxy::cut`] closes every open connection and refuses new ones until
/// [`TcpProxy::restore`]. Stopped on drop.
#[derive(Debug)]
pub struct TcpProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    open: watch::Sender<bool>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    /// Byte strings whose occurrences in client-to-backend traffic are counted.
    watched: Vec<Vec<u8>>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    backends: Vec<SocketAddr>,
    /// Round-robin position per kind of first line.
    next: HashMap<Vec<u8>, usize>,
    /// `[watched][backend]` occurrences.
    seen: Vec<Vec<usize>>,
    /// Connections per backend.
    connections: Vec<usize>,
}

impl TcpProxy {
    /// Starts a proxy to `backends`, counting occurrences of each of `watched` in what
    /// clients send (per backend; an occurrence split across two reads is missed, which
    /// does not happen for a request line sent in one write). `backends` may be empty
    /// (connections are then closed at once) and set later with
    /// [`TcpProxy::set_backends`], for backends that must know the proxy's address first.
    pub async fn start(backends: &[SocketAddr], watched: &[&str]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            watched: watched.iter().map(|w| w.as_bytes().to_vec()).collect(),
            state: Mutex::new(State {
                backends: backends.to_vec(),
                next: HashMap::new(),
                seen: vec![vec![0; backends.len()]; watched.len()],
                connections: vec![0; backends.len()],
            }),
        });
        let (open, open_rx) = watch::channel(true);
        let accept_shared = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !*open_rx.borrow() {
                    drop(client);
                    continue;
                }
                let shared = Arc::clone(&accept_shared);
                let open = open_rx.clone();
                tokio::spawn(async move {
                    let _ = relay(client, shared, open).await;
                });
            }
        });
        TcpProxy {
            addr,
            shared,
            open,
            task,
        }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Replaces the backends; counters start again at zero.
    pub fn set_backends(&self, backends: &[SocketAddr]) {
        let mut state = self.shared.state.lock().unwrap();
        state.backends = backends.to_vec();
        state.next.clear();
        state.seen = vec![vec![0; backends.len()]; self.shared.watched.len()];
        state.connections = vec![0; backends.len()];
    }

    /// Closes every open connection and refuses new ones (they are accepted and closed at
    /// once), as a network cut between the clients and the backends would.
    pub fn cut(&self) {
        self.open.send_replace(false);
    }

    /// Lets connections through again after [`TcpProxy::cut`].
    pub fn restore(&self) {
        self.open.send_replace(true);
    }

    /// Occurrences of `watched[i]` in client traffic, per backend (in the order given to
    /// [`TcpProxy::start`]).
    pub fn seen(&self, i: usize) -> Vec<usize> {
        self.shared.state.lock().unwrap().seen[i].clone()
    }

    /// Connections relayed so far, per backend.
    pub fn connections(&self) -> Vec<usize> {
        self.shared.state.lock().unwrap().connections.clone()
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.open.send_replace(false);
        self.task.abort();
    }
}

/// The kind of a connection: its first line up to `?`, at most 64 bytes.
fn kind(first: &[u8]) -> Vec<u8> {
    first
        .iter()
        .take(64)
        .take_while(|&&b| b != b'\r' && b != b'\n' && b != b'?')
        .copied()
        .collect()
}

fn count(shared: &Shared, backend: usize, bytes: &[u8]) {
    if shared.watched.is_empty() {
        return;
    }
    let mut state = shared.state.lock().unwrap();
    for (i, needle) in shared.watched.iter().enumerate() {
        let hits = bytes
            .windows(needle.len())
            .filter(|w| w == &needle.as_slice())
            .count();
        if let Some(n) = state.seen[i].get_mut(backend) {
            *n += hits;
        }
    }
}

async fn relay(
    mut client: TcpStream,
    shared: Arc<Shared>,
    mut open: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut first = vec![0u8; 16 * 1024];
    let n = match tokio::time::timeout(FIRST_BYTES, client.read(&mut first)).await {
        Ok(Ok(n)) if n > 0 => n,
        _ => return Ok(()),
    };
    first.truncate(n);
    let (start, backends) = {
        let mut state = shared.state.lock().unwrap();
        let backends = state.backends.clone();
        if backends.is_empty() {
            return Ok(());
        }
        let slot = state.next.entry(kind(&first)).or_insert(0);
        let start = *slot % backends.len();
        *slot += 1;
        (start, backends)
    };
    // The chosen backend, or the next one that accepts the connection.
    let mut server = None;
    for step in 0..backends.len() {
        let i = (start + step) % backends.len();
        if let Ok(s) = TcpStream::connect(backends[i]).await {
            server = Some((i, s));
            break;
        }
    }
    let Some((backend, mut server)) = server else {
        return Ok(());
    };
    if let Some(n) = shared.state.lock().unwrap().connections.get_mut(backend) {
        *n += 1;
    }
    count(&shared, backend, &first);
    server.write_all(&first).await?;
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = cr.read(&mut buf).await?;
            if n == 0 {
                sw.shutdown().await?;
                return Ok::<_, std::io::Error>(());
            }
            count(&shared, backend, &buf[..n]);
            sw.write_all(&buf[..n]).await?;
        }
    };
    let down = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = sr.read(&mut buf).await?;
            if n == 0 {
                cw.shutdown().await?;
                return Ok::<_, std::io::Error>(());
            }
            cw.write_all(&buf[..n]).await?;
        }
    };
    let both = async { tokio::try_join!(up, down).map(|_| ()) };
    let cut = async {
        while *open.borrow_and_update() {
            if open.changed().await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        r = both => r,
        () = cut => Ok(()),
    }
}
