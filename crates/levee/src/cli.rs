//! Command-line handling. Errors leave through `anyhow` and become exit code 1.
//!
//! Every command that reads a config takes `-c FILE`, else the file
//! `LEVEE_CONFIG` names, else [`DEFAULT_CONFIG`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use levee_config::{AccessLogTarget, Config, ConfigError};

mod admin;

use admin::{ctl, reload};

/// Where the config is when neither `-c` nor `LEVEE_CONFIG` says.
pub(crate) const DEFAULT_CONFIG: &str = "/etc/levee/levee.toml";

#[derive(Parser, Debug)]
#[command(
    name = "levee",
    version,
    about = "An event-driven front end for HTTP and mail",
    long_about = "An event-driven front end for HTTP and mail.\n\n\
        Without a command, levee serves the current directory on 127.0.0.1:8080. \
        Commands that read a config take -c FILE, else the file LEVEE_CONFIG names, \
        else /etc/levee/levee.toml."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

/// `-c`: the config file.
#[derive(clap::Args, Debug, Clone)]
struct ConfigArg {
    /// The config file [default: /etc/levee/levee.toml].
    #[arg(
        short = 'c',
        long = "config",
        env = "LEVEE_CONFIG",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,
}

impl ConfigArg {
    fn path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG))
    }
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run with a config file, until SIGTERM or SIGINT (SIGHUP reloads,
    /// SIGUSR1 reopens the log files, SIGUSR2 upgrades the binary).
    Run {
        #[command(flatten)]
        config: ConfigArg,
        /// Take the listening sockets from the levee on this control socket
        /// (what `levee upgrade` starts the new binary with).
        #[arg(long, value_name = "SOCKET", hide = true)]
        inherit_from: Option<PathBuf>,
    },
    /// Validate a config file (like `nginx -t`) and what it asks of this
    /// machine: every error, with file:line:column and key.
    Check {
        #[command(flatten)]
        config: ConfigArg,
        /// Check the file alone, not against this machine (files, addresses,
        /// DNS): for a config meant for another machine.
        #[arg(long)]
        file_only: bool,
    },
    /// A quick reverse proxy with no config file.
    Proxy {
        /// Address to listen on, e.g. 127.0.0.1:8080.
        #[arg(long)]
        listen: SocketAddr,
        /// Upstream servers, comma separated: host:port[,host:port…].
        #[arg(long, value_delimiter = ',', required = true)]
        to: Vec<String>,
        /// Worker threads (default: one per core).
        #[arg(long)]
        workers: Option<usize>,
        /// Write an access log to stdout (off by default for this quick mode).
        #[arg(long)]
        access_log: bool,
    },
    /// Make a running levee reload its config and say whether it took it:
    /// through the admin listener (`POST /reload`) when the config has
    /// `[admin]`, else by SIGHUP to the pid in `pid_file` once the config
    /// passes `levee check` here. Exits 1, printing why, when the config is
    /// refused.
    Reload(ReloadArgs),
    /// Make a running levee stop gracefully (sends SIGTERM).
    Stop(Target),
    /// Control a running levee through its admin API (docs/api.md).
    Ctl(CtlArgs),
    /// The config as levee reads it.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Replace the running levee's binary without dropping a connection:
    /// it starts the new binary, hands it the listening sockets over its
    /// control socket (`control_socket`), waits until it is ready, then
    /// drains. Exits 1, printing why, if the new one did not take over.
    Upgrade {
        #[command(flatten)]
        config: ConfigArg,
        /// The binary to start [default: the one the running levee was
        /// started from, at the same path].
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Print the man page levee(1) (roff), for `man -l -`; with --out-dir,
    /// write it and a page per command there (levee-run.1, ...).
    Man {
        /// Write every page into this directory instead.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCmd {
    /// Print the effective config as TOML (like `nginx -T`): every default
    /// filled in, secrets in the file replaced by "<redacted>".
    Dump {
        #[command(flatten)]
        config: ConfigArg,
    },
}

/// Which admin listener, and what to ask it.
#[derive(clap::Args, Debug)]
struct CtlArgs {
    /// The config whose `[admin] address` to use (unless --admin is given).
    #[command(flatten)]
    config: ConfigArg,
    /// The admin address directly, e.g. 127.0.0.1:9090.
    #[arg(long)]
    admin: Option<SocketAddr>,
    #[command(flatten)]
    token: TokenArgs,
    #[command(subcommand)]
    command: CtlCmd,
}

/// Where `levee ctl` and `levee reload` find the admin token: this file,
/// else `LEVEE_ADMIN_TOKEN`, else the config's `token_file`/`token_env`.
#[derive(clap::Args, Debug)]
struct TokenArgs {
    /// A file holding the admin token.
    #[arg(long)]
    token_file: Option<PathBuf>,
}

/// Which running levee to reload.
#[derive(clap::Args, Debug)]
struct ReloadArgs {
    /// The config: its `[admin]` (or else its `pid_file`) says how to reach
    /// levee (unless --pid-file or --admin is given).
    #[command(flatten)]
    config: ConfigArg,
    /// Signal the pid in this file, without checking any config.
    #[arg(long, conflicts_with = "admin")]
    pid_file: Option<PathBuf>,
    /// Ask the admin listener at this address, e.g. 127.0.0.1:9090.
    #[arg(long)]
    admin: Option<SocketAddr>,
    #[command(flatten)]
    token: TokenArgs,
}

#[derive(Subcommand, Debug)]
enum CtlCmd {
    /// Every upstream's servers and their state.
    Upstreams,
    /// One upstream as JSON.
    Upstream { name: String },
    /// No new requests to SERVER; in-flight ones finish; idle connections
    /// close (`--fleet`: on every member of the fleet that has it).
    Drain {
        upstream: String,
        server: String,
        #[arg(long)]
        fleet: bool,
    },
    /// No requests at all to SERVER (`--fleet`: on every member).
    Disable {
        upstream: String,
        server: String,
        #[arg(long)]
        fleet: bool,
    },
    /// SERVER takes requests again (`--fleet`: on every member).
    Enable {
        upstream: String,
        server: String,
        #[arg(long)]
        fleet: bool,
    },
    /// Set SERVER's weight (1-1000), or `default` for the configured one
    /// (`--fleet`: on every member).
    Weight {
        upstream: String,
        server: String,
        weight: String,
        #[arg(long)]
        fleet: bool,
    },
    /// The Prometheus metrics.
    Metrics,
    /// The cache store's size and entries, as JSON (`cache stats`: a
    /// table of each tier's entries, bytes, hits and state).
    Cache {
        #[command(subcommand)]
        action: Option<CacheCmd>,
    },
    /// Remove cached responses: `purge url http://host/path`, `purge prefix
    /// http://host/img/` or `purge tag NAME` (on every member of a fleet).
    Purge { by: String, value: String },
    /// Close USER's logged-in mail sessions, their mailbox having moved (on
    /// every member of a fleet).
    CloseUser { user: String },
    /// The fleet's members: stale ones marked, differing configs shown
    /// (`fleet ping [NOTE]`: a ping on the fleet's bus, in every member's
    /// log; `fleet push FILE [--first N]`: a config for every member;
    /// `fleet drain NAME` / `undrain NAME`: NAME leaves / rejoins DNS answers).
    Fleet {
        #[command(subcommand)]
        action: Option<FleetCmd>,
    },
    /// Refuse ADDRESS (an address or a CIDR network) at accept and on every
    /// request, until lifted or for a while (`--for 10m`).
    Ban {
        address: String,
        #[arg(long = "for", value_name = "DURATION")]
        duration: Option<String>,
    },
    /// Lift the ban of ADDRESS (as it was banned).
    Unban { address: String },
    /// The banned addresses (in a fleet: the fleet's, with who set each).
    Bans,
    /// Exempt ADDRESS (an address or a CIDR network) from every ban, until
    /// lifted or for a while (`--for 1h`).
    Allow {
        address: String,
        #[arg(long = "for", value_name = "DURATION")]
        duration: Option<String>,
    },
    /// Lift the allow entry of ADDRESS (as it was added).
    Unallow { address: String },
    /// The allow entries.
    Allows,
    /// The download redirector's mirror sets.
    #[command(subcommand)]
    Mirrors(MirrorsCmd),
    /// Every certificate: names, issuer, expiry, source (file or ACME) and
    /// the last renewal's outcome (`certs renew NAME`: renew it now).
    Certs {
        #[command(subcommand)]
        action: Option<CertsCmd>,
    },
}

#[derive(Subcommand, Debug)]
enum CertsCmd {
    /// Renew the ACME certificate for NAME now and show the outcome.
    Renew { name: String },
}

#[derive(Subcommand, Debug)]
enum CacheCmd {
    /// Each tier (memory, disk, shared): entries, bytes, hits, state.
    Stats,
}

#[derive(Subcommand, Debug)]
enum FleetCmd {
    /// Send a ping on the fleet's bus; every member logs it.
    Ping { note: Option<String> },
    /// Take member NAME out of the fleet's DNS answers at once (it keeps serving).
    Drain { name: String },
    /// Put member NAME back into the fleet's DNS answers.
    Undrain { name: String },
    /// Check FILE here (as `levee check`), then have every member check it
    /// on its own machine, apply it as a reload and save it over its config
    /// file; prints each member's result and exits 1 unless all applied.
    Push {
        file: PathBuf,
        /// Apply to the first N members (by name) first, and to the others
        /// once those are healthy on it.
        #[arg(long)]
        first: Option<usize>,
    },
}

#[derive(Subcommand, Debug)]
enum MirrorsCmd {
    /// Every mirror of every set (or of SET) and its state.
    List { set: Option<String> },
    /// Walk SET's tree and scan every mirror now.
    Scan { set: String },
    /// Offer MIRROR again (also lifts an automatic disabling).
    Enable { set: String, mirror: String },
    /// Stop offering MIRROR.
    Disable { set: String, mirror: String },
    /// Downloads per file, mirror, country and day, as JSON.
    Stats { set: String },
    /// Add a mirror: JSON with the keys of a [[mirrors.SET.mirror]] table.
    Add { set: String, json: String },
    /// Replace MIRROR's settings with JSON (the keys of a mirror table).
    Edit {
        set: String,
        mirror: String,
        json: String,
    },
    /// Forget MIRROR's runtime edits: back to the config file's mirror, or
    /// removed if the file has none (in a fleet: on every member).
    Reset { set: String, mirror: String },
}

/// Which running levee: the pid file named by a config, or a pid file directly.
#[derive(clap::Args, Debug)]
struct Target {
    /// The config whose `pid_file` to use (unless --pid-file is given).
    #[command(flatten)]
    config: ConfigArg,
    /// Signal the pid in this file.
    #[arg(long)]
    pid_file: Option<PathBuf>,
}

pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("levee: {}", causes(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes, `a: b: c`, leaving out a cause whose text the
/// error above it already includes (most of ours print their source), so
/// an OS error is said once.
fn causes(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        None => {
            let root = std::env::current_dir().context("current directory")?;
            let addr: SocketAddr = ([127, 0, 0, 1], 8080).into();
            let config = levee_config::builtin_static(root.clone(), addr);
            eprintln!("levee: serving {} on http://{addr}/", root.display());
            eprintln!(
                "levee: for a reverse proxy: levee proxy --listen {addr} --to 127.0.0.1:3000"
            );
            eprintln!(
                "levee: with a config file: levee run -c levee.toml (see docs/config.md; `levee check -c` validates it)"
            );
            serve(config, levee_server::Process::default())
        }
        Some(Cmd::Run {
            config,
            inherit_from,
        }) => serve(
            load(&config.path())?,
            levee_server::Process {
                log: None,
                inherit_from,
            },
        ),
        Some(Cmd::Check { config, file_only }) => check(&config.path(), file_only),
        Some(Cmd::Proxy {
            listen,
            to,
            workers,
            access_log,
        }) => {
            let mut config = levee_config::builtin_proxy(listen, to);
            if let Some(n) = workers {
                config.workers = n.max(1);
            }
            config.log.access = if access_log {
                AccessLogTarget::Stdout
            } else {
                AccessLogTarget::Off
            };
            if let Err(errors) = levee_config::validate(&config) {
                eprintln!("{errors}");
                bail!("invalid --listen/--to");
            }
            eprintln!("levee: proxying http://{listen}/");
            serve(config, levee_server::Process::default())
        }
        Some(Cmd::Reload(args)) => reload(&args),
        Some(Cmd::Stop(target)) => signal(&target, rustix::process::Signal::TERM),
        Some(Cmd::Ctl(args)) => ctl(args),
        Some(Cmd::Config(ConfigCmd::Dump { config })) => {
            print!("{}", levee_config::dump(&load(&config.path())?));
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Upgrade { config, binary }) => {
            let path = config.path();
            let pid = levee_server::process::upgrade(&load(&path)?, binary.as_deref())
                .with_context(|| format!("upgrading the levee of {}", path.display()))?;
            println!("levee: upgraded; pid {pid} serves now, the old process drains");
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Completions { shell }) => {
            crate::ship::completions(shell, &mut std::io::stdout())?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Man { out_dir: None }) => {
            crate::ship::man(&mut std::io::stdout())?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Man { out_dir: Some(dir) }) => {
            crate::ship::man_pages(&dir)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn load(path: &Path) -> anyhow::Result<Config> {
    levee_config::load(path).map_err(|errors| refused(&errors.errors, Some(path)))
}

/// Prints each error on its line; the summary (`N error(s) in FILE`) is
/// the error returned, printed by `main` on a line of its own.
fn refused(errors: &[ConfigError], file: Option<&Path>) -> anyhow::Error {
    let mut sorted: Vec<&ConfigError> = errors.iter().collect();
    sorted.sort_by_key(|e| (e.line, e.column));
    for e in sorted {
        eprintln!("{e}");
    }
    summary(errors.len(), file)
}

fn summary(errors: usize, file: Option<&Path>) -> anyhow::Error {
    let file = file.map_or_else(|| "the configuration".into(), |f| f.display().to_string());
    anyhow::anyhow!("{errors} error(s) in {file}")
}

/// Holds the config to everything `levee run` and a reload would hold it
/// to on this machine (`levee_server::preflight`): files load, addresses
/// can be bound, server names resolve (a name that does not is a warning:
/// levee starts and keeps resolving it). Problems are printed in file
/// order, warnings marked as such. With `file_only`, the file alone.
fn check(path: &Path, file_only: bool) -> anyhow::Result<ExitCode> {
    let (_, warnings) = checked(path, file_only)?;
    let warnings = match warnings {
        0 => String::new(),
        1 => ", with 1 warning".to_owned(),
        n => format!(", with {n} warnings"),
    };
    println!(
        "levee: configuration file {} is ok{warnings}",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The config at `path` and its count of warnings, if `levee check` passes
/// it; every problem printed.
fn checked(path: &Path, file_only: bool) -> anyhow::Result<(Config, usize)> {
    let config = load(path)?;
    let found = if file_only {
        levee_server::preflight::Findings::default()
    } else {
        levee_server::preflight::check(&config)
    };
    let mut all: Vec<(&ConfigError, bool)> = found
        .errors
        .iter()
        .map(|e| (e, false))
        .chain(found.warnings.iter().map(|w| (w, true)))
        .collect();
    all.sort_by_key(|(e, _)| (e.line, e.column));
    for (e, warning) in all {
        let mark = if warning { "warning: " } else { "" };
        eprintln!("{mark}{e}");
    }
    if !found.errors.is_empty() {
        return Err(summary(found.errors.len(), Some(path)));
    }
    let warnings = found.warnings.len();
    Ok((config, warnings))
}

fn serve(config: Config, mut process: levee_server::Process) -> anyhow::Result<ExitCode> {
    let source = config.source.clone();
    // The log file is opened first of all, so its problems are said here,
    // at their keys, like every other file's.
    let unwritable = levee_config::check_filesystem(&config);
    if !unwritable.is_empty() {
        return Err(refused(&unwritable, source.as_deref()));
    }
    process.log = crate::logging::init(&config.log)?;
    match levee_server::run_process(config, process) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(levee_server::ServerError::Invalid(e)) => Err(refused(&e.errors, source.as_deref())),
        Err(e) => Err(e.into()),
    }
}

fn signal(target: &Target, sig: rustix::process::Signal) -> anyhow::Result<ExitCode> {
    let pid_file = match &target.pid_file {
        Some(p) => p.clone(),
        None => {
            let c = target.config.path();
            load(&c)?
                .pid_file
                .with_context(|| format!("{} sets no pid_file", c.display()))?
        }
    };
    let text = std::fs::read_to_string(&pid_file)
        .with_context(|| format!("pid file {}", pid_file.display()))?;
    let raw: i32 = text
        .trim()
        .parse()
        .with_context(|| format!("pid file {} holds no pid", pid_file.display()))?;
    let pid = rustix::process::Pid::from_raw(raw).with_context(|| format!("invalid pid {raw}"))?;
    rustix::process::kill_process(pid, sig).with_context(|| format!("signalling pid {raw}"))?;
    Ok(ExitCode::SUCCESS)
}
