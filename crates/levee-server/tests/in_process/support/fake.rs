//! Fake upstreams that answer by script: [`Reply`] says what one request
//! gets, [`Fake`] serves HTTP/1.1 (and `h2.rs` HTTP/2 with prior
//! knowledge) on a loopback port on a runtime of its own.

mod h2;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// How a scripted reply ends, after its head and body steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The response is complete (HTTP/1: the connection stays open for
    /// the next request; HTTP/2: END_STREAM).
    Done,
    /// HTTP/1: the connection closes (FIN), mid-body if the head promised
    /// more. HTTP/2: before any head, the connection goes away (GOAWAY)
    /// with the stream dropped unanswered; after one, as `Reset`.
    Close,
    /// HTTP/1: the connection is reset (RST). HTTP/2: the stream is reset
    /// with INTERNAL_ERROR.
    Reset,
    /// Nothing more is sent; the fake waits for levee to give up on the
    /// request and records it (see [`Fake::cancelled`]).
    Hang,
}

#[derive(Clone, Debug)]
enum Step {
    Head(u16, Vec<(String, String)>),
    Data(Vec<u8>),
    Delay(Duration),
    Wait(Gate),
}

/// A point in a script that waits for the test: for an order of events a
/// pause cannot promise on a loaded machine (the client has the first
/// bytes before the upstream resets, say).
#[derive(Clone, Debug, Default)]
pub struct Gate(Arc<tokio::sync::Notify>);

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Lets the script go on (now, or when it gets there).
    pub fn open(&self) {
        self.0.notify_one();
    }

    async fn passed(&self) {
        self.0.notified().await;
    }
}

/// What a fake answers one request: steps in order, then an [`End`].
#[derive(Clone, Debug)]
pub struct Reply {
    steps: Vec<Step>,
    end: End,
}

impl Reply {
    /// A head with `status` and no fields yet.
    pub fn status(status: u16) -> Reply {
        Reply {
            steps: vec![Step::Head(status, Vec::new())],
            end: End::Done,
        }
    }

    /// `status` with `body` whole, its length declared.
    pub fn with_body(status: u16, body: &str) -> Reply {
        Reply::status(status)
            .header("content-length", &body.len().to_string())
            .data(body.as_bytes())
    }

    /// No head at all: `end` at once (Reset, Close or Hang).
    pub fn only(end: End) -> Reply {
        Reply {
            steps: Vec::new(),
            end,
        }
    }

    /// A field on the head (the last head step).
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        if let Some(Step::Head(_, fields)) = self.steps.last_mut() {
            fields.push((name.to_string(), value.to_string()));
        }
        self
    }

    /// Body bytes, sent as they are (an HTTP/1 body's framing is the
    /// script's; HTTP/2 sends them as one DATA frame).
    pub fn data(mut self, bytes: &[u8]) -> Reply {
        self.steps.push(Step::Data(bytes.to_vec()));
        self
    }

    /// A pause before the next step.
    pub fn delay(mut self, pause: Duration) -> Reply {
        self.steps.push(Step::Delay(pause));
        self
    }

    /// A wait until the test opens `gate`.
    pub fn wait(mut self, gate: &Gate) -> Reply {
        self.steps.push(Step::Wait(gate.clone()));
        self
    }

    /// How the reply ends.
    pub fn then(mut self, end: End) -> Reply {
        self.end = end;
        self
    }
}

/// A request as a fake saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Default)]
struct Record {
    seen: Vec<Seen>,
    connections: usize,
    /// Requests left unanswered (`End::Hang`) that levee gave up on: the
    /// HTTP/1 connection closed, or the HTTP/2 stream reset with this reason.
    cancelled: Vec<String>,
}

/// What a fake's connections share: the script and the record.
struct Shared {
    replies: Vec<Reply>,
    record: Mutex<Record>,
}

impl Shared {
    fn record(&self) -> MutexGuard<'_, Record> {
        // A test thread that panicked holding it has failed already.
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `seen` and picks its reply: the n-th request gets the n-th
    /// reply, the last one repeating.
    fn next(&self, seen: Seen) -> Reply {
        let mut record = self.record();
        let n = record.seen.len();
        record.seen.push(seen);
        let last = self.replies.len().saturating_sub(1);
        self.replies
            .get(n.min(last))
            .cloned()
            .unwrap_or_else(|| Reply::only(End::Hang))
    }
}

/// A scripted upstream on 127.0.0.1, stopped on drop.
pub struct Fake {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Fake {
    /// An HTTP/1.1 upstream answering its n-th request with `replies[n]`
    /// (the last one from then on).
    pub fn http1(replies: Vec<Reply>) -> Fake {
        Fake::spawn(replies, |listener, shared| async move {
            while let Ok((conn, _)) = listener.accept().await {
                shared.record().connections += 1;
                tokio::spawn(serve_http1(conn, shared.clone()));
            }
        })
    }

    /// An HTTP/2 upstream (h2c with prior knowledge), scripted as
    /// [`Fake::http1`].
    pub fn h2c(replies: Vec<Reply>) -> Fake {
        Fake::spawn(replies, |listener, shared| async move {
            while let Ok((conn, _)) = listener.accept().await {
                shared.record().connections += 1;
                tokio::spawn(h2::serve(conn, shared.clone()));
            }
        })
    }

    fn spawn<F, Fut>(replies: Vec<Reply>, accept: F) -> Fake
    where
        F: FnOnce(TcpListener, Arc<Shared>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake upstream");
        socket.set_nonblocking(true).expect("nonblocking");
        let addr = socket.local_addr().expect("fake's address");
        let shared = Arc::new(Shared {
            replies,
            record: Mutex::new(Record::default()),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let theirs = shared.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("fake's runtime");
            rt.block_on(async move {
                let listener = TcpListener::from_std(socket).expect("fake's listener");
                tokio::select! {
                    () = accept(listener, theirs) => {}
                    _ = stopped => {}
                }
            });
        });
        Fake {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The requests seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.record().seen.clone()
    }

    /// How many requests came.
    pub fn requests(&self) -> usize {
        self.shared.record().seen.len()
    }

    /// How many connections levee opened.
    pub fn connections(&self) -> usize {
        self.shared.record().connections
    }

    /// Unanswered requests levee gave up on, each with how it told the
    /// fake (`"closed"`, or the HTTP/2 reset reason).
    pub fn cancelled(&self) -> Vec<String> {
        self.shared.record().cancelled.clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One HTTP/1 connection: requests in turn, each answered by its reply.
async fn serve_http1(mut conn: TcpStream, shared: Arc<Shared>) {
    let mut buf = Vec::new();
    loop {
        let Some(seen) = read_head(&mut conn, &mut buf).await else {
            return;
        };
        let reply = shared.next(seen);
        for step in &reply.steps {
            let wrote = match step {
                Step::Head(status, fields) => {
                    let mut head = format!("HTTP/1.1 {status} Scripted\r\n");
                    for (k, v) in fields {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    head.push_str("\r\n");
                    conn.write_all(head.as_bytes()).await
                }
                Step::Data(bytes) => conn.write_all(bytes).await,
                Step::Delay(pause) => {
                    tokio::time::sleep(*pause).await;
                    Ok(())
                }
                Step::Wait(gate) => {
                    gate.passed().await;
                    Ok(())
                }
            };
            if wrote.is_err() {
                return;
            }
        }
        match reply.end {
            End::Done => {}
            End::Close => return,
            End::Reset => {
                // SO_LINGER 0: the close sends RST, not FIN.
                let _ = socket2::SockRef::from(&conn).set_linger(Some(Duration::ZERO));
                return;
            }
            End::Hang => {
                // levee sends nothing more on this connection before the
                // answer, so a read that ends means it gave up.
                let mut byte = [0u8; 1];
                if matches!(conn.read(&mut byte).await, Ok(0) | Err(_)) {
                    shared.record().cancelled.push("closed".to_string());
                }
                return;
            }
        }
    }
}

/// Reads one request head (and skips its `Content-Length` body); `None`
/// once the connection ends.
async fn read_head(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Seen> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            let mut lines = head.split("\r\n");
            let mut first = lines.next()?.split(' ');
            let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            let length = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| v.parse::<usize>().ok())
                .unwrap_or(0);
            while buf.len() < length {
                read_more(conn, buf).await?;
            }
            buf.drain(..length);
            return Some(Seen {
                method,
                path,
                headers,
            });
        }
        read_more(conn, buf).await?;
    }
}

async fn read_more(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 4096];
    match conn.read(&mut chunk).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}
