//! The `levee` command: run, check, proxy, reload, stop.

mod cli;
mod logging;
mod ship;

/// mimalloc keeps each size class in its own pages, so the long-lived small
/// objects of idle connections pack densely instead of sitting between the
/// holes that freed request buffers leave in glibc's heap. Measured with
/// bench/idle: see bench/README.md for the figures with and without it.
#[cfg(not(feature = "alloc-count"))]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The same allocator behind counters, in a benchmark build only
/// (alloc_count.rs, bench/allocs.py).
#[cfg(feature = "alloc-count")]
#[global_allocator]
static ALLOC: alloc_count::Counting = alloc_count::Counting(mimalloc::MiMalloc);
#[cfg(feature = "alloc-count")]
mod alloc_count;

use std::process::ExitCode;

fn main() -> ExitCode {
    levee_http::idle::set_trim(trim);
    #[cfg(feature = "alloc-count")]
    alloc_count::report();
    cli::main()
}

/// Gives this thread's freed mimalloc pages back to the system. `force`
/// (after connections parked, so at most once per park tick) purges every
/// free page at once; otherwise only pages whose purge delay has passed
/// (the once-a-second call, which also runs under load). The one `unsafe`
/// in a shipped levee (alloc_count.rs has the other, in benchmark builds
/// only): an FFI call the mimalloc crate has no safe wrapper for.
#[allow(unsafe_code)]
fn trim(force: bool) {
    // SAFETY: mi_collect takes no pointers; it only walks the calling
    // thread's heap and the arenas, which mimalloc synchronises itself.
    unsafe { libmimalloc_sys::mi_collect(force) }
}
