//! The `levee` command: run, check, proxy, reload, stop.

mod cli;

/// mimalloc keeps each size class in its own pages, so the long-lived small
/// objects of idle connections pack densely instead of sitting between the
/// holes that freed request buffers leave in glibc's heap. Measured with
/// bench/idle: see bench/README.md for the figures with and without it.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
