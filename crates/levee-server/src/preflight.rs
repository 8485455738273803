//! What a parsed config is held to beyond its text, on this machine: the
//! files it names load, its addresses can be bound, its servers' names
//! resolve. One list for `levee check`, start-up and reload, so `check`
//! refuses what `run` or a reload would refuse, each problem at its key
//! (`FILE:LINE:COLUMN: KEY: MESSAGE`).
//!
//! ```text
//!                                       levee check     start             reload
//! static roots, user maps, log and      error           error             error
//!   pid file (check_filesystem)
//! [mirrors] roots, state directories,   error           error             error
//!   GeoIP databases
//! htpasswd files, user maps, upstream   error           error             error
//!   TLS files: loaded
//! listener TLS files: loaded            error           error             logged; the files
//!                                                                         in use stay (tls.rs)
//! admin token and password file,        error           error             error
//!   fleet credentials and CA file,
//!   [acme] files and storage directory,
//!   [dns] records, TSIG keys, GeoIP
//!   database (levee_dns::load)
//! user and group exist                  error           error             (not re-read)
//! levee may become them (root)          warning         error             -
//! listener, admin and DNS addresses     bound a moment  bound             new ones bound
//!   (DNS: UDP and TCP)                  (in use: warning)
//! server names                          resolved:       resolved: logged, the server waits
//!                                       warning         for its name (levee-upstream dns.rs)
//! ```
//!
//! An address in use is only a warning: `levee check` before `levee
//! reload` finds the running levee on its own ports. A fleet push is held
//! to all of it but the names ([`machine`]), since they only warn.

use std::io;
use std::net::SocketAddr;

use levee_config::{Config, ConfigError, Locator, MailAuth};

use crate::listeners;

/// What [`check`] found.
#[derive(Debug, Default)]
pub struct Findings {
    /// What `levee run` or a reload would refuse.
    pub errors: Vec<ConfigError>,
    /// What it would start with, but not as the operator may expect.
    pub warnings: Vec<ConfigError>,
}

/// Everything `levee check` holds `config` to (the table above).
pub fn check(config: &Config) -> Findings {
    let at = Locator::new(config);
    let mut found = machine(config);
    for u in &config.upstreams {
        let (_, unresolved) = levee_upstream::dns::resolve_servers(u, config.resolver.as_ref());
        for s in unresolved {
            let key = format!("{}.servers[{}]", upstream_key(&u.name), s.index);
            found.warnings.push(at.error(
                &key,
                format!(
                    "`{}` does not resolve now ({}); levee starts without this server and \
                     keeps resolving its name, and it takes requests once it does",
                    s.address, s.error
                ),
            ));
        }
    }
    if let Some(disk) = &config.cache.disk
        && let Err(why) = writable_dir(&disk.path)
    {
        found.warnings.push(at.error(
            "cache.disk.path",
            format!(
                "{why} (as the user running this check); levee starts with the memory tier \
                 only and logs the disk tier's failure (docs/cache.md)"
            ),
        ));
    }
    found
}

/// Whether levee could make and write `dir`: it is a writable directory,
/// or the nearest ancestor it would be created in is (the disk tier's
/// directory, `[acme] storage`).
pub(crate) fn writable_dir(dir: &std::path::Path) -> Result<(), String> {
    use rustix::fs::{Access, access};
    let mut at = dir;
    loop {
        match std::fs::metadata(at) {
            Ok(m) if !m.is_dir() => {
                return Err(format!("`{}` is not a directory", at.display()));
            }
            Ok(_) => {
                return access(at, Access::WRITE_OK | Access::EXEC_OK)
                    .map_err(|e| format!("`{}` is not writable: {e}", at.display()));
            }
            Err(_) => match at.parent() {
                Some(p) if !p.as_os_str().is_empty() => at = p,
                _ => return Ok(()),
            },
        }
    }
}

/// What `levee check` holds `config` to but for its server names, whose
/// resolution only warns: all a push is refused for, without waiting on
/// DNS on the control thread.
pub fn machine(config: &Config) -> Findings {
    let at = Locator::new(config);
    let mut found = Findings {
        errors: files(config),
        warnings: Vec::new(),
    };
    found.errors.extend(crate::tls::check(config));
    found.errors.extend(levee_admin::access::check(config));
    found.errors.extend(crate::fleet::check(config));
    found
        .errors
        .extend(levee_dns::load(config).err().unwrap_or_default());
    addresses(config, &at, &mut found);
    match crate::privileges::account(config) {
        Err(e) => {
            if let crate::ServerError::Invalid(errors) = crate::process::privilege_error(config, &e)
            {
                found.errors.extend(errors.errors);
            }
        }
        // A check run by someone else than the service's own user or root
        // (an operator's shell) cannot tell; `levee run` then refuses.
        Ok(Some(account)) => {
            if let Err(e) = crate::privileges::can_become(&account) {
                found.warnings.push(at.error("user", e.to_string()));
            }
        }
        Ok(None) => {}
    }
    found
}

/// The files a start or a reload loads before anything changes, each
/// problem at the key naming the file: `[acme]`'s among them (its CA root
/// and EAB files, its storage directory), and `[mirrors.NAME]`'s (root,
/// state directory, GeoIP databases). Listener certificates are left
/// to [`crate::tls::check`]: a reload keeps the ones in use.
pub fn files(config: &Config) -> Vec<ConfigError> {
    let at = Locator::new(config);
    let mut errors = levee_config::check_filesystem(config);
    errors.extend(crate::acme::check(config));
    errors.extend(levee_mirror::check(config));
    for (i, route) in config.routes.iter().enumerate() {
        if let Some(auth) = &route.protect.auth
            && let Err(e) = levee_protect::BasicAuth::load(&auth.file, &auth.realm)
        {
            errors.push(at.error(&format!("route[{i}].auth_basic_file"), e.to_string()));
        }
    }
    for (i, l) in config.listeners.iter().enumerate() {
        let Some(mail) = &l.mail else { continue };
        let key = match &mail.auth {
            // check_filesystem has said so.
            MailAuth::UserMap(path) if !path.is_file() => continue,
            MailAuth::UserMap(_) => format!("listener[{i}].mail.user_map"),
            MailAuth::Http(_) => format!("listener[{i}].mail"),
        };
        if let Err(e) = levee_mail::front::FrontState::load(mail) {
            errors.push(at.error(&key, e.to_string()));
        }
    }
    for u in &config.upstreams {
        let Some(tls) = &u.tls else { continue };
        if let Err(e) = levee_upstream::GroupTls::build(tls, u.protocol) {
            let file = [&tls.ca, &tls.client_cert, &tls.client_key]
                .into_iter()
                .flatten()
                .find(|f| Some(f.path.as_path()) == e.path());
            let key = match file {
                Some(f) => f.key.clone(),
                None => format!("{}.tls", upstream_key(&u.name)),
            };
            errors.push(at.error(&key, e.to_string()));
        }
    }
    errors
}

/// `upstream.NAME`, quoted as in every message.
fn upstream_key(name: &str) -> String {
    levee_config::child_key("upstream", name)
}

/// Binds the admin address and every listener address a moment, in the
/// order start-up binds them, holding each until all are tried.
fn addresses(config: &Config, at: &Locator, found: &mut Findings) {
    let mut wanted: Vec<(String, SocketAddr)> = Vec::new();
    if let Some(admin) = &config.admin {
        wanted.push(("admin.address".to_owned(), admin.address));
    }
    for (i, l) in config.listeners.iter().enumerate() {
        wanted.push((format!("listener[{i}].address"), l.address));
    }
    let tcp_only = wanted.len();
    for (i, a) in config.dns.iter().flat_map(|d| d.listen.iter()).enumerate() {
        wanted.push((format!("dns.listen[{i}]"), *a));
    }
    let mut held = Vec::new();
    for (n, (key, addr)) in wanted.iter().enumerate() {
        let earlier = wanted.get(..n).unwrap_or_default();
        if let Some((other, _)) = earlier
            .iter()
            .find(|(_, a)| levee_config::addresses_clash(*a, *addr))
        {
            found.errors.push(at.error(
                key,
                format!("{addr} cannot be bound: {other} takes the same port"),
            ));
            continue;
        }
        // A DNS address is tried on UDP and TCP, and let go at once.
        let tried = if n < tcp_only {
            listeners::probe(*addr).map(|s| held.push(s))
        } else {
            levee_dns::server::probe_bind(*addr)
        };
        match tried {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => found.warnings.push(at.error(
                key,
                format!(
                    "{addr} is in use now: `levee run` fails unless it is freed (a running \
                     levee that holds it keeps it through `levee reload`)"
                ),
            )),
            Err(e) => found.errors.push(at.error(key, cannot_listen(*addr, &e))),
        }
    }
}

/// Why levee cannot listen on `addr`, with a hint for the usual causes.
pub(crate) fn cannot_listen(addr: SocketAddr, e: &io::Error) -> String {
    let hint = match e.kind() {
        io::ErrorKind::AddrNotAvailable => "; the machine has no such address",
        io::ErrorKind::PermissionDenied if addr.port() < 1024 => {
            "; ports below 1024 need root or CAP_NET_BIND_SERVICE"
        }
        _ => "",
    };
    format!("cannot listen on {addr}: {e}{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        levee_config::parse(text, std::path::Path::new("t.toml")).expect("valid config")
    }

    #[test]
    fn an_address_the_machine_does_not_have_is_an_error() {
        // 192.0.2.0/24 is TEST-NET-1: never assigned to a host.
        let c = config("[[listener]]\naddress = \"192.0.2.1:18080\"\n[[route]]\nrespond = \"x\"\n");
        let found = check(&c);
        assert_eq!(found.errors.len(), 1, "{found:?}");
        let e = &found.errors[0];
        assert_eq!(e.key, "listener[0].address");
        assert!(
            e.message.starts_with("cannot listen on 192.0.2.1:18080: "),
            "{e}"
        );
        assert!(e.message.contains("no such address"), "{e}");
    }

    #[test]
    fn a_disk_tier_that_cannot_be_made_is_a_warning() {
        let file = std::env::temp_dir().join(format!("levee-preflight-{}", std::process::id()));
        std::fs::write(&file, b"not a directory").expect("write a file");
        let c = config(&format!(
            "[[listener]]\naddress = \"127.0.0.1:0\"\n[[route]]\nrespond = \"x\"\n\
             [cache.disk]\npath = \"{}/cache\"\nmax_size = \"1m\"\n",
            file.display()
        ));
        let found = check(&c);
        let _ = std::fs::remove_file(&file);
        assert!(found.errors.is_empty(), "{found:?}");
        let w: Vec<_> = found
            .warnings
            .iter()
            .filter(|w| w.key == "cache.disk.path")
            .collect();
        assert_eq!(w.len(), 1, "{found:?}");
        assert!(w[0].message.contains("is not a directory"), "{}", w[0]);
        // A directory that can be made: no warning.
        let ok = config(&format!(
            "[[listener]]\naddress = \"127.0.0.1:0\"\n[[route]]\nrespond = \"x\"\n\
             [cache.disk]\npath = \"{}/new/cache\"\nmax_size = \"1m\"\n",
            std::env::temp_dir().display()
        ));
        assert!(
            check(&ok)
                .warnings
                .iter()
                .all(|w| w.key != "cache.disk.path"),
            "a directory that can be made"
        );
    }

    #[test]
    fn a_port_in_use_is_a_warning() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        let c = config(&format!(
            "[[listener]]\naddress = \"{addr}\"\n[[route]]\nrespond = \"x\"\n"
        ));
        let found = check(&c);
        assert!(found.errors.is_empty(), "{found:?}");
        assert_eq!(found.warnings.len(), 1, "{found:?}");
        assert!(found.warnings[0].message.contains("is in use now"));
    }

    #[test]
    fn the_admin_address_may_not_take_a_listeners_port() {
        let c = config(
            "[admin]\naddress = \"127.0.0.1:18099\"\n[[listener]]\naddress = \"127.0.0.1:18099\"\n\
             [[route]]\nrespond = \"x\"\n",
        );
        let found = check(&c);
        let keys: Vec<&str> = found.errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["listener[0].address"], "{found:?}");
    }

    #[test]
    fn a_user_or_group_the_machine_lacks_is_an_error_at_its_key() {
        let c = config(
            "user = \"levee-no-such-user\"\n[[listener]]\naddress = \"127.0.0.1:0\"\n\
             [[route]]\nrespond = \"x\"\n",
        );
        let found = check(&c);
        let e = found
            .errors
            .iter()
            .find(|e| e.key == "user")
            .expect("an error at `user`");
        assert!(e.message.contains("no user `levee-no-such-user`"), "{e}");
        let c = config(
            "user = \"root\"\ngroup = \"levee-no-such-group\"\n[[listener]]\naddress = \"127.0.0.1:0\"\n\
             [[route]]\nrespond = \"x\"\n",
        );
        let found = check(&c);
        let e = found
            .errors
            .iter()
            .find(|e| e.key == "group")
            .expect("an error at `group`");
        assert!(e.message.contains("no group"), "{e}");
    }

    #[test]
    fn upstream_keys_are_quoted_like_the_walk_quotes_them() {
        assert_eq!(upstream_key("app"), "upstream.app");
        assert_eq!(upstream_key("my.app"), "upstream.\"my.app\"");
    }
}
