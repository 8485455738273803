//! What a package ships besides the binary, generated from the command
//! line itself so it never disagrees with it: shell completions
//! (clap_complete) and the man page (clap_mangen).

use std::io::Write;

use clap::CommandFactory;

use crate::cli::Cli;

/// The completion script for `shell`.
pub(crate) fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "levee", out);
    Ok(())
}

/// levee(1): synopsis, options and every command with what it does.
pub(crate) fn man(out: &mut dyn Write) -> anyhow::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(out)?;
    Ok(())
}

/// levee(1) and a page per command (levee-run(1), levee-config-dump(1), ...),
/// which levee(1) refers to, written into `dir`.
pub(crate) fn man_pages(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(Cli::command(), dir)?;
    Ok(())
}
