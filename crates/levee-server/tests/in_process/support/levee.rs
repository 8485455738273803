//! levee in the test's process: `levee_server::run` on a thread of its own,
//! serving a listener the harness bound, until the handle drops.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::thread::JoinHandle;

use levee_server::ServerError;
use tokio::sync::oneshot;

/// A levee serving `addr` until dropped or [`Levee::stop`]ped.
pub struct Levee {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), ServerError>>>,
}

impl Levee {
    /// levee with one worker (so passive health and balancing are one
    /// worker's, as a test expects), no access log and no grace on stop;
    /// `timeouts` are more `[timeouts]` lines, `tail` the rest of the
    /// config (routes, upstreams).
    pub fn start(timeouts: &str, tail: &str) -> Levee {
        let socket = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = socket.local_addr().expect("bound address");
        let text = format!(
            "workers = 1\n[log]\naccess = \"off\"\n[timeouts]\ngrace = \"0s\"\n{timeouts}\n\
             [[listener]]\naddress = \"{addr}\"\n{tail}\n"
        );
        let config = levee_config::parse(&text, Path::new("in-process.toml"))
            .unwrap_or_else(|e| panic!("config refused: {e}\n{text}"));
        let mut listeners = levee_server::Listeners::new();
        listeners.add(addr, socket);
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            levee_server::run(listeners, config, async {
                let _ = stopped.await;
            })
        });
        Levee {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// levee with one route proxying to upstream `app` over `servers`;
    /// `upstream` is more lines of `[upstream.app]`.
    pub fn proxy(servers: &[SocketAddr], upstream: &str, timeouts: &str) -> Levee {
        let servers: Vec<String> = servers.iter().map(|s| format!("\"{s}\"")).collect();
        let tail = format!(
            "[[route]]\nproxy = \"app\"\n[upstream.app]\nservers = [{}]\n{upstream}\n",
            servers.join(", ")
        );
        Levee::start(timeouts, &tail)
    }

    /// Stops levee as on SIGTERM and waits for `run` to return.
    pub fn stop(mut self) -> Result<(), ServerError> {
        self.finish()
    }

    fn finish(&mut self) -> Result<(), ServerError> {
        if let Some(stop) = self.stop.take() {
            // An error means run returned already: join says how.
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(t) => t.join().expect("levee's thread panicked"),
            None => Ok(()),
        }
    }
}

impl Drop for Levee {
    fn drop(&mut self) {
        let result = self.finish();
        if !std::thread::panicking() {
            assert!(result.is_ok(), "levee's run failed: {result:?}");
        }
    }
}
