//! The dashboard, served by the admin listener (`docs/dashboard.md`):
//!
//! ```text
//! GET /, /login                  the page (no credentials: it holds no data)
//! GET /assets/BUNDLE/NAME        its scripts and styles (no credentials)
//! GET /api/dashboard/history     the last hour (1 s) and day (1 min)
//! GET /api/dashboard/live        the current view, as the stream sends it
//! GET /api/dashboard/events      the view once a second (server-sent events)
//! GET /api/dashboard/config      the running config, secrets redacted, and its diff with the file
//! ```
//!
//! Actions use the control API (`api.rs`, `/reload`) with the session's
//! CSRF token, like any other client. A sampler task reads the counters
//! once a second ([`sample`]), keeps the history ([`history`]) and builds
//! the live view once ([`live`]) for every open page: nothing runs per
//! proxied request.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use serde_json::json;
use tokio::sync::{Semaphore, watch};

use crate::gate::Admin;
use crate::server::{Reply, Request};
use crate::session::Found;

pub mod assets;
mod config_view;
pub mod history;
pub mod live;
pub mod procfs;
pub mod sample;

use history::History;
use sample::{Sample, Source};

/// Samples kept for windows: the live view's percentiles span ten seconds.
const WINDOW: usize = 11;
/// Event streams open at once; each holds a connection for as long as a
/// page is open.
const MAX_STREAMS: usize = 16;
/// A stream write that takes longer than this ends the stream.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The dashboard's state, part of [`Admin`] and kept across reloads.
#[derive(Debug)]
pub struct Dash {
    history: Mutex<History>,
    samples: Mutex<VecDeque<Sample>>,
    /// The latest live view as JSON text, for every open stream.
    live: watch::Sender<Arc<str>>,
    started: AtomicBool,
    streams: Arc<Semaphore>,
    /// The running config, for the config view.
    config: Mutex<Option<Arc<levee_config::Config>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update is one call that leaves the data whole.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Default for Dash {
    fn default() -> Dash {
        Dash {
            history: Mutex::default(),
            samples: Mutex::default(),
            live: watch::channel(Arc::from("{}")).0,
            started: AtomicBool::new(false),
            streams: Arc::new(Semaphore::new(MAX_STREAMS)),
            config: Mutex::default(),
        }
    }
}

impl Dash {
    /// Records the config now running (at start and after each reload).
    pub fn set_config(&self, config: Arc<levee_config::Config>) {
        *lock(&self.config) = Some(config);
    }

    /// Starts the sampler once per [`Admin`], on the runtime serving the
    /// admin listener. It stops when the `Admin` is dropped.
    pub(crate) fn start(admin: &Arc<Admin>) {
        if admin.dash.started.swap(true, Ordering::Relaxed) {
            return;
        }
        let source = sample::Counters {
            shared: admin.shared.clone(),
        };
        let weak = Arc::downgrade(admin);
        tokio::spawn(run(weak, source));
    }

    /// Takes one sample and updates the history and the live view.
    pub fn tick(&self, s: Sample) {
        let mut samples = lock(&self.samples);
        samples.push_back(s);
        while samples.len() > WINDOW {
            samples.pop_front();
        }
        let n = samples.len();
        let (Some(now), Some(prev), Some(old)) = (
            samples.get(n - 1),
            samples.get(n.saturating_sub(2)),
            samples.front(),
        ) else {
            return;
        };
        if n < 2 {
            return;
        }
        let w = live::Window { now, prev, old };
        let point = live::point(&w);
        let view = live::view(&w, &point);
        drop(samples);
        lock(&self.history).push(point);
        self.live.send_replace(Arc::from(view.to_string()));
    }

    /// Bytes the history holds (fixed from the start).
    pub fn history_memory(&self) -> usize {
        lock(&self.history).memory()
    }
}

async fn run(admin: Weak<Admin>, source: impl Source) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        every.tick().await;
        let Some(admin) = admin.upgrade() else {
            return;
        };
        admin.dash.tick(source.sample());
    }
}

/// The requests answered without credentials: the page and its assets,
/// which hold no data. `None` for everything else.
pub(crate) fn public(req: &Request) -> Option<Reply> {
    if !matches!(req.method.as_str(), "GET" | "HEAD") {
        return None;
    }
    let gzip = assets::accepts_gzip(req.accept_encoding.as_deref());
    let asset = match req.path.as_str() {
        "/" | "/login" => assets::find("index.html").map(|a| assets::reply(a, gzip, false)),
        path => {
            let rest = path.strip_prefix("/assets/")?;
            let (bundle, name) = rest.split_once('/')?;
            match assets::find(name).filter(|a| a.name != "index.html") {
                // Another bundle's name: a page from before an upgrade.
                Some(a) if bundle == assets::BUNDLE => Some(assets::reply(a, gzip, true)),
                _ => Some(Reply::error(404, "no such asset")),
            }
        }
    };
    asset.map(|mut r| {
        if req.method == "HEAD" {
            r.body.clear();
        }
        r
    })
}

/// `/api/dashboard/…`, for a request already authenticated.
pub(crate) fn api(admin: &Admin, req: &Request, session: Option<&Found>) -> Reply {
    let dash = &admin.dash;
    match (req.method.as_str(), req.path.as_str()) {
        ("GET" | "HEAD", "/api/dashboard/history") => {
            let history = lock(&dash.history);
            let body = json!({
                "seconds": history.seconds.to_json(),
                "minutes": history.minutes.to_json(),
                "memory_bytes": history.memory(),
            });
            drop(history);
            let gzip = assets::accepts_gzip(req.accept_encoding.as_deref());
            json_maybe_gzip(&body, gzip)
        }
        ("GET" | "HEAD", "/api/dashboard/live") => {
            let text = dash.live.borrow().clone();
            Reply::new(200, "application/json", text.as_bytes().to_vec())
        }
        ("GET", "/api/dashboard/events") => events(admin, req, session),
        ("GET" | "HEAD", "/api/dashboard/config") => {
            let running = lock(&dash.config).clone();
            match running {
                Some(config) => Reply::json(200, &config_view::view(&config)),
                None => Reply::error(503, "the running config is not known yet"),
            }
        }
        (_, path) => Reply::error(404, format!("no such endpoint: {path}")),
    }
}

fn json_maybe_gzip(body: &serde_json::Value, gzip: bool) -> Reply {
    let text = body.to_string().into_bytes();
    if !gzip {
        return Reply::new(200, "application/json", text);
    }
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    match e.write_all(&text).and_then(|()| e.finish()) {
        Ok(zipped) => Reply::new(200, "application/json", zipped)
            .with_header("Content-Encoding", "gzip".to_owned())
            .with_header("Vary", "Accept-Encoding".to_owned()),
        Err(_) => Reply::new(200, "application/json", text),
    }
}

/// `GET /api/dashboard/events`: the live view as server-sent events, one
/// `data:` line a second, until the page closes or its session ends (then
/// an `expired` event, and the page goes back to the login form).
fn events(admin: &Admin, req: &Request, session: Option<&Found>) -> Reply {
    let Ok(slot) = admin.dash.streams.clone().try_acquire_owned() else {
        return Reply::error(503, "too many dashboards open; close one");
    };
    let cookie = session
        .and(req.cookie.as_deref())
        .and_then(crate::session::cookie_value)
        .map(str::to_owned);
    let mut live = admin.dash.live.subscribe();
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(2);
    let sessions = admin.sessions.clone();
    tokio::spawn(async move {
        let _slot = slot;
        // Tell EventSource to wait 2 s before it reconnects.
        if tx.send(b"retry: 2000\n\n".to_vec()).await.is_err() {
            return;
        }
        loop {
            let text = live.borrow_and_update().clone();
            let alive = |id: &str| {
                lock(&sessions)
                    .find(id, None, tokio::time::Instant::now())
                    .is_some()
            };
            if let Some(id) = &cookie
                && !alive(id)
            {
                let _ = tx.send(b"event: expired\ndata: {}\n\n".to_vec()).await;
                return;
            }
            let event = format!("data: {text}\n\n").into_bytes();
            if tx.send(event).await.is_err() || live.changed().await.is_err() {
                return;
            }
        }
    });
    Reply::stream(200, "text/event-stream", rx, WRITE_TIMEOUT)
}

#[cfg(test)]
mod tests;
