//! A prototype io_uring data path for plain HTTP/1.1 reverse proxying (issue 21).
//!
//! It exists to answer one question with measurements (bench/uring.py): does a
//! completion-based data path spend at least 10% less CPU per proxied request
//! than levee's epoll (tokio) path? It is not levee: no config, no TLS, no
//! routing, no timeouts. It does the same per-request work as `levee proxy` on
//! the benchmark's path: parse the request head, forward it with the fields
//! levee adds, relay the response without its hop-by-hop fields, over pooled
//! keep-alive upstream connections.
//!
//!     levee-uring-proto --listen 127.0.0.1:8080 --to 127.0.0.1:9000 [--workers 2]
//!                       [--io epoll] [--fixed-files]
//!
//! One thread per worker, each with its own ring and its own SO_REUSEPORT
//! listener, so that workers share nothing. `--io epoll` runs the same code
//! over epoll and plain read/send calls instead of the ring: the twin that
//! tells the ring's effect apart from the user-space work levee does and the
//! prototype does not. `--fixed-files` puts each connection in the ring's
//! table of registered files as well.

mod bufring;
mod epoll;
mod http;
mod out;
mod sock;
mod worker;

use std::net::SocketAddrV4;
use std::process::ExitCode;

struct Args {
    listen: SocketAddrV4,
    upstream: SocketAddrV4,
    workers: usize,
    epoll: bool,
    fixed: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut listen = None;
    let mut upstream = None;
    let mut workers = 2;
    let mut epoll = false;
    let mut fixed = false;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--fixed-files" {
            fixed = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = Some(value.parse().map_err(|e| format!("--listen: {e}"))?),
            "--to" => upstream = Some(value.parse().map_err(|e| format!("--to: {e}"))?),
            "--workers" => workers = value.parse().map_err(|e| format!("--workers: {e}"))?,
            "--io" => {
                epoll = match value.as_str() {
                    "epoll" => true,
                    "uring" => false,
                    _ => return Err(format!("--io {value}: uring or epoll")),
                }
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(Args {
        listen: listen.ok_or("--listen ADDR:PORT is required")?,
        upstream: upstream.ok_or("--to ADDR:PORT is required")?,
        workers,
        epoll,
        fixed,
    })
}

/// Whether the kernel lets this process use io_uring: the sysctl first (it says
/// why), then a real ring, since seccomp or a container can refuse the setup
/// call while the sysctl allows it. levee would log this and keep epoll.
fn io_uring_usable() -> Result<(), String> {
    if let Ok(text) = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled") {
        match text.trim() {
            "0" => {}
            other => return Err(format!("kernel.io_uring_disabled = {other}")),
        }
    }
    io_uring::IoUring::new(2)
        .map(drop)
        .map_err(|e| format!("io_uring_setup failed: {e}"))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("levee-uring-proto: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = io_uring_usable().or_else(|e| if args.epoll { Ok(()) } else { Err(e) }) {
        eprintln!("levee-uring-proto: io_uring unavailable: {e}");
        return ExitCode::from(1);
    }
    let mut threads = Vec::new();
    for n in 0..args.workers {
        // Each worker binds its own listener before the first accepts, so a
        // failure to bind shows at start, not as a silent missing worker.
        let listener = match sock::listen(args.listen) {
            Ok(fd) => fd,
            Err(e) => {
                eprintln!("levee-uring-proto: listen {}: {e}", args.listen);
                return ExitCode::from(1);
            }
        };
        let (upstream, epoll, fixed) = (args.upstream, args.epoll, args.fixed);
        let spawned = std::thread::Builder::new()
            .name(format!("uring-worker-{n}"))
            .spawn(move || worker::run(listener, upstream, epoll, fixed));
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => {
                eprintln!("levee-uring-proto: spawn worker: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let io = if args.epoll { "epoll" } else { "io_uring" };
    eprintln!(
        "levee-uring-proto: proxying {} to {} over {io}",
        args.listen, args.upstream
    );
    let mut code = ExitCode::SUCCESS;
    for t in threads {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                eprintln!("levee-uring-proto: worker: {e}");
                code = ExitCode::from(1);
            }
            Err(_) => code = ExitCode::from(1),
        }
    }
    code
}
