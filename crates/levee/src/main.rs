//! The `levee` command: run, check, proxy, reload, stop.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
