//! The commands that talk to a running levee's admin listener: `levee
//! ctl`, and `levee reload` when there is an admin listener to ask.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};

use levee_config::Config;

use super::{
    CacheCmd, CertsCmd, CtlArgs, CtlCmd, FleetCmd, MirrorsCmd, ReloadArgs, Target, TokenArgs,
    checked, load, signal,
};

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

pub(super) fn ctl(args: CtlArgs) -> anyhow::Result<ExitCode> {
    use levee_admin::ctl::Command;
    let config = match (&args.admin, &args.config.config) {
        (Some(_), None) => None,
        _ => Some(load(&args.config.path())?),
    };
    let client = admin_client(args.admin, config.as_ref(), &args.token)?;
    if let CtlCmd::Fleet {
        action: Some(FleetCmd::Push { file, first }),
    } = &args.command
    {
        return push(&client, file, *first);
    }
    if let Some((upstream, server, action, weight)) = fleet_action(&args.command)? {
        let done = levee_admin::ctl::act::fleet_action(&client, upstream, server, action, weight)?;
        print!("{}", done.table);
        return Ok(if done.ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let command = match args.command {
        CtlCmd::Upstreams => Command::Upstreams,
        CtlCmd::Cache { action: None } => Command::Cache,
        CtlCmd::Cache {
            action: Some(CacheCmd::Stats),
        } => Command::CacheStats,
        CtlCmd::Purge { by, value } => Command::Purge {
            by: levee_admin::ctl::PurgeBy::parse(&by)
                .with_context(|| format!("purge by `{by}`: expected url, prefix or tag"))?,
            value,
        },
        CtlCmd::Upstream { name } => Command::Upstream(name),
        CtlCmd::CloseUser { user } => Command::CloseUser(user),
        CtlCmd::Drain {
            upstream, server, ..
        } => Command::Drain { upstream, server },
        CtlCmd::Disable {
            upstream, server, ..
        } => Command::Disable { upstream, server },
        CtlCmd::Enable {
            upstream, server, ..
        } => Command::Enable { upstream, server },
        CtlCmd::Weight {
            upstream,
            server,
            weight,
            ..
        } => Command::Weight {
            upstream,
            server,
            weight: weight_arg(&weight)?,
        },
        CtlCmd::Metrics => Command::Metrics,
        CtlCmd::Certs { action: None } => Command::Certs,
        CtlCmd::Certs {
            action: Some(CertsCmd::Renew { name }),
        } => Command::CertsRenew(name),
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
                MirrorsCmd::Reset { set, mirror } => M::Reset { set, mirror },
            })
        }
        CtlCmd::Ban { address, duration } => Command::Ban { address, duration },
        CtlCmd::Unban { address } => Command::Unban(address),
        CtlCmd::Bans => Command::Bans,
        CtlCmd::Allow { address, duration } => Command::Allow { address, duration },
        CtlCmd::Unallow { address } => Command::Unallow(address),
        CtlCmd::Allows => Command::Allows,
    };
    let out = levee_admin::ctl::run(&client, &command)?;
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// `WEIGHT`: 1-1000, or `default` (`None`) for the configured one.
fn weight_arg(weight: &str) -> anyhow::Result<Option<u32>> {
    Ok(match weight {
        "default" => None,
        n => Some(
            n.parse::<u32>()
                .ok()
                .filter(|w| (1..=1000).contains(w))
                .with_context(|| format!("weight `{n}`: expected 1-1000 or `default`"))?,
        ),
    })
}

/// A server action with `--fleet`: upstream, server, action and, for
/// `weight`, the weight.
type FleetAction<'a> = (&'a str, &'a str, &'static str, Option<Option<u32>>);

fn fleet_action(command: &CtlCmd) -> anyhow::Result<Option<FleetAction<'_>>> {
    Ok(match command {
        CtlCmd::Drain {
            upstream,
            server,
            fleet: true,
        } => Some((upstream, server, "drain", None)),
        CtlCmd::Disable {
            upstream,
            server,
            fleet: true,
        } => Some((upstream, server, "disable", None)),
        CtlCmd::Enable {
            upstream,
            server,
            fleet: true,
        } => Some((upstream, server, "enable", None)),
        CtlCmd::Weight {
            upstream,
            server,
            weight,
            fleet: true,
        } => Some((upstream, server, "weight", Some(weight_arg(weight)?))),
        _ => None,
    })
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

/// `levee reload`: through the admin listener when there is one, so the
/// running levee's own verdict comes back; otherwise the config is checked
/// here and levee is signalled only if it passes.
pub(super) fn reload(args: &ReloadArgs) -> anyhow::Result<ExitCode> {
    if let Some(addr) = args.admin {
        let config = args.config.config.as_deref().map(load).transpose()?;
        return reload_through(&admin_client(Some(addr), config.as_ref(), &args.token)?);
    }
    if args.pid_file.is_some() && args.config.config.is_none() {
        let target = Target {
            config: args.config.clone(),
            pid_file: args.pid_file.clone(),
        };
        return signal(&target, rustix::process::Signal::HUP);
    }
    let path = &args.config.path();
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
            config: args.config.clone(),
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
