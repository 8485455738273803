//! Command-line handling. Errors leave through `anyhow` and become exit code 1.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use levee_config::{AccessLogTarget, Config, ConfigError};

#[derive(Parser, Debug)]
#[command(
    name = "levee",
    version,
    about = "An event-driven front end for HTTP and mail"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run with a config file.
    Run {
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
    },
    /// Validate a config file (like `nginx -t`) and what it asks of this
    /// machine: every error, with file:line:column and key.
    Check {
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
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
}

/// Which admin listener, and what to ask it.
#[derive(clap::Args, Debug)]
struct CtlArgs {
    /// The config whose `[admin] address` to use.
    #[arg(short = 'c', long = "config", required_unless_present = "admin")]
    config: Option<PathBuf>,
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
    /// The config: its `[admin]` (or else its `pid_file`) says how to reach levee.
    #[arg(
        short = 'c',
        long = "config",
        required_unless_present_any = ["pid_file", "admin"]
    )]
    config: Option<PathBuf>,
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
    /// No new requests to SERVER; in-flight ones finish; idle connections close.
    Drain { upstream: String, server: String },
    /// No requests at all to SERVER.
    Disable { upstream: String, server: String },
    /// SERVER takes requests again.
    Enable { upstream: String, server: String },
    /// Set SERVER's weight (1-1000), or `default` for the configured one.
    Weight {
        upstream: String,
        server: String,
        weight: String,
    },
    /// The Prometheus metrics.
    Metrics,
    /// The cache store's size and entries.
    Cache,
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
    /// The banned addresses.
    Bans,
    /// The download redirector's mirror sets.
    #[command(subcommand)]
    Mirrors(MirrorsCmd),
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
}

/// Which running levee: the pid file named by a config, or a pid file directly.
#[derive(clap::Args, Debug)]
struct Target {
    #[arg(short = 'c', long = "config", required_unless_present = "pid_file")]
    config: Option<PathBuf>,
    #[arg(long)]
    pid_file: Option<PathBuf>,
}

pub fn main() -> ExitCode {
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
            serve(config)
        }
        Some(Cmd::Run { config }) => serve(load(&config)?),
        Some(Cmd::Check { config, file_only }) => check(&config, file_only),
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
            serve(config)
        }
        Some(Cmd::Reload(args)) => reload(&args),
        Some(Cmd::Stop(target)) => signal(&target, rustix::process::Signal::TERM),
        Some(Cmd::Ctl(args)) => ctl(args),
    }
}

/// The admin listener at `addr` (or `config`'s `[admin]`), with the token
/// from `--token-file`, `LEVEE_ADMIN_TOKEN` or the config's token source.
fn admin_client(
    addr: Option<SocketAddr>,
    config: Option<&Config>,
    token: &TokenArgs,
) -> anyhow::Result<levee_admin::ctl::Client> {
    let admin = config.and_then(|c| c.admin.as_ref());
    let addr = match (addr, admin) {
        (Some(a), _) => a,
        (None, Some(admin)) => admin.address,
        (None, None) => bail!("the config has no [admin] section; give --admin ADDRESS"),
    };
    // A listener bound to every address is reached on loopback, whose
    // address is then also the `Host` it accepts.
    let addr = match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from(([127, 0, 0, 1], addr.port()))
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    };
    let token = if let Some(file) = &token.token_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("token file {}", file.display()))?;
        Some(
            levee_admin::access::token(text.trim())
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("token file {}", file.display()))?,
        )
    } else if let Some(text) = std::env::var("LEVEE_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
    {
        Some(
            levee_admin::access::token(text.trim())
                .map_err(anyhow::Error::msg)
                .context("LEVEE_ADMIN_TOKEN")?,
        )
    } else if let Some(source) = admin.and_then(|a| a.token.as_ref()) {
        Some(levee_admin::access::read_token(source).map_err(anyhow::Error::msg)?)
    } else {
        None
    };
    Ok(levee_admin::ctl::Client { addr, token })
}

fn ctl(args: CtlArgs) -> anyhow::Result<ExitCode> {
    use levee_admin::ctl::Command;
    let config = match (&args.admin, &args.config) {
        (None, Some(c)) => Some(load(c)?),
        _ => None,
    };
    if args.admin.is_none() && args.config.is_none() {
        bail!("give -c CONFIG or --admin ADDRESS");
    }
    let client = admin_client(args.admin, config.as_ref(), &args.token)?;
    if let CtlCmd::Fleet {
        action: Some(FleetCmd::Push { file, first }),
    } = &args.command
    {
        return push(&client, file, *first);
    }
    let command = match args.command {
        CtlCmd::Upstreams => Command::Upstreams,
        CtlCmd::Cache => Command::Cache,
        CtlCmd::Purge { by, value } => Command::Purge {
            by: levee_admin::ctl::PurgeBy::parse(&by)
                .with_context(|| format!("purge by `{by}`: expected url, prefix or tag"))?,
            value,
        },
        CtlCmd::Upstream { name } => Command::Upstream(name),
        CtlCmd::CloseUser { user } => Command::CloseUser(user),
        CtlCmd::Drain { upstream, server } => Command::Drain { upstream, server },
        CtlCmd::Disable { upstream, server } => Command::Disable { upstream, server },
        CtlCmd::Enable { upstream, server } => Command::Enable { upstream, server },
        CtlCmd::Weight {
            upstream,
            server,
            weight,
        } => {
            let weight = match weight.as_str() {
                "default" => None,
                n => Some(
                    n.parse::<u32>()
                        .ok()
                        .filter(|w| (1..=1000).contains(w))
                        .with_context(|| format!("weight `{n}`: expected 1-1000 or `default`"))?,
                ),
            };
            Command::Weight {
                upstream,
                server,
                weight,
            }
        }
        CtlCmd::Metrics => Command::Metrics,
        CtlCmd::Fleet { action: None } => Command::Fleet,
        CtlCmd::Fleet {
            action: Some(FleetCmd::Ping { note }),
        } => Command::FleetPing(note.unwrap_or_default()),
        CtlCmd::Fleet {
            action: Some(FleetCmd::Drain { name }),
        } => Command::FleetDrain {
            instance: name,
            drained: true,
        },
        CtlCmd::Fleet {
            action: Some(FleetCmd::Undrain { name }),
        } => Command::FleetDrain {
            instance: name,
            drained: false,
        },
        CtlCmd::Fleet {
            action: Some(FleetCmd::Push { .. }),
        } => bail!("a push is handled above"),
        CtlCmd::Mirrors(m) => {
            use levee_admin::ctl::MirrorsCommand as M;
            Command::Mirrors(match m {
                MirrorsCmd::List { set } => M::List(set),
                MirrorsCmd::Scan { set } => M::Scan(set),
                MirrorsCmd::Enable { set, mirror } => M::Enable { set, mirror },
                MirrorsCmd::Disable { set, mirror } => M::Disable { set, mirror },
                MirrorsCmd::Stats { set } => M::Stats(set),
                MirrorsCmd::Add { set, json } => M::Add { set, json },
                MirrorsCmd::Edit { set, mirror, json } => M::Edit { set, mirror, json },
            })
        }
        CtlCmd::Ban { address, duration } => Command::Ban { address, duration },
        CtlCmd::Unban { address } => Command::Unban(address),
        CtlCmd::Bans => Command::Bans,
    };
    let out = levee_admin::ctl::run(&client, &command)?;
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// `levee ctl fleet push`: the file is held to what `levee check` holds
/// it to, here, before any member sees it.
fn push(
    client: &levee_admin::ctl::Client,
    file: &Path,
    first: Option<usize>,
) -> anyhow::Result<ExitCode> {
    if first == Some(0) {
        bail!("--first takes 1 or more members");
    }
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let (config, _) = checked(file, false)?;
    let rollout = levee_admin::ctl::push::push(client, &config, &text, first)?;
    print!("{}", rollout.table);
    Ok(if rollout.all_applied {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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

/// `levee reload`: through the admin listener when there is one, so the
/// running levee's own verdict comes back; otherwise the config is checked
/// here and levee is signalled only if it passes.
fn reload(args: &ReloadArgs) -> anyhow::Result<ExitCode> {
    if let Some(addr) = args.admin {
        let config = args.config.as_deref().map(load).transpose()?;
        return reload_through(&admin_client(Some(addr), config.as_ref(), &args.token)?);
    }
    let Some(path) = &args.config else {
        let target = Target {
            config: None,
            pid_file: args.pid_file.clone(),
        };
        return signal(&target, rustix::process::Signal::HUP);
    };
    // A file that does not parse is refused by any levee: say so here.
    let config = load(path)?;
    if config.admin.is_some() {
        let client = admin_client(None, Some(&config), &args.token)?;
        match reload_through(&client) {
            Err(e)
                if config.pid_file.is_some()
                    && matches!(
                        e.downcast_ref::<levee_admin::ctl::CtlError>(),
                        Some(levee_admin::ctl::CtlError::Connect { .. })
                    ) =>
            {
                eprintln!("levee: {e:#}; signalling the pid in pid_file instead");
            }
            other => return other,
        }
    }
    let (config, _) = checked(path, false)?;
    let target =
        Target {
            config: None,
            pid_file: Some(config.pid_file.with_context(|| {
                format!("{} sets neither [admin] nor pid_file", path.display())
            })?),
        };
    signal(&target, rustix::process::Signal::HUP)
}

fn reload_through(client: &levee_admin::ctl::Client) -> anyhow::Result<ExitCode> {
    match levee_admin::ctl::reload(client) {
        Ok(file) => {
            println!("levee: reloaded {file}");
            Ok(ExitCode::SUCCESS)
        }
        Err(levee_admin::ctl::CtlError::Refused(lines)) => {
            for line in &lines {
                eprintln!("{line}");
            }
            bail!("reload refused; the running config stays")
        }
        Err(e) => Err(e.into()),
    }
}

fn serve(config: Config) -> anyhow::Result<ExitCode> {
    init_tracing(&config.log.level);
    let source = config.source.clone();
    match levee_server::run(config) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(levee_server::ServerError::Invalid(e)) => Err(refused(&e.errors, source.as_deref())),
        Err(e) => Err(e.into()),
    }
}

fn init_tracing(level: &str) {
    // The admin audit log stays on whatever `[log] level` says; LEVEE_LOG,
    // set by hand, is taken as it is.
    let configured = |level: &str| {
        tracing_subscriber::EnvFilter::try_new(format!(
            "{level},{}=info",
            levee_admin::audit::TARGET
        ))
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("LEVEE_LOG")
        .or_else(|_| configured(level))
        .or_else(|_| configured("info"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn signal(target: &Target, sig: rustix::process::Signal) -> anyhow::Result<ExitCode> {
    let pid_file = match (&target.pid_file, &target.config) {
        (Some(p), _) => p.clone(),
        (None, Some(c)) => load(c)?
            .pid_file
            .with_context(|| format!("{} sets no pid_file", c.display()))?,
        (None, None) => bail!("give -c CONFIG or --pid-file FILE"),
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
