//! What the DNS tests share: fleet members that also serve DNS (levee
//! processes on 127.0.0.2, .3, .4 with their admin listener on
//! 127.0.0.1), and `dig` as the client.
// Shared by test binaries, which export nothing: `pub` is for the test files.
#![allow(unreachable_pub)]
// Each test file uses a part of this.
#![allow(dead_code)]

use std::process::Command;
use std::time::Duration;

use crate::support::{Levee, LeveeSetup, free_port, levee_cmd, metric, poll};

pub const ZONE: &str = "example.test";

/// One member of a test fleet, serving HTTP and DNS on 127.0.0.`n+2`.
pub struct Member {
    pub n: usize,
    pub levee: Levee,
    pub ip: String,
    pub port: u16,
    pub dns: u16,
    pub admin: u16,
}

/// The `[dns]` section the members share; `zone_extra` goes into the zone,
/// `fleet_extra` into its fleet record `www`.
pub fn dns_section(ip: &str, port: u16, extra: &Extra<'_>) -> String {
    let Extra {
        dns: dns_extra,
        zone: zone_extra,
        fleet: fleet_extra,
        ..
    } = extra;
    format!(
        r#"[dns]
listen = "{ip}:{port}"
{dns_extra}
probe_interval = "200ms"
probe_timeout = "500ms"
probe_rise = 1
probe_fall = 1

[[dns.zone]]
name = "{ZONE}"
ns = ["ns1.{ZONE}"]
records = ["ns1 A 192.0.2.53", "@ MX 10 mail", "mail A 192.0.2.25", "@ TXT \"v=spf1 -all\""]
{zone_extra}

[[dns.zone.fleet]]
name = "www"
{fleet_extra}
"#
    )
}

/// Keys added to `[dns]`, to the zone, and to its fleet record `www`.
#[derive(Default, Clone, Copy)]
pub struct Extra<'a> {
    /// The member's address (127.0.0.`n+2` when `None`).
    pub ip: Option<&'a str>,
    pub dns: &'a str,
    pub zone: &'a str,
    pub fleet: &'a str,
}

impl Member {
    /// Starts member `n` with `fleet` as the rest of its `[fleet]` body.
    pub fn start(n: usize, fleet: &str, zone_extra: &str, fleet_extra: &str) -> Member {
        let extra = Extra {
            ip: None,
            dns: "",
            zone: zone_extra,
            fleet: fleet_extra,
        };
        Member::start_on(n, LeveeSetup::new(), free_port(), fleet, &extra)
    }

    /// As [`Member::start`], with the setup and DNS port given (a restart
    /// on the same ports).
    pub fn start_on(
        n: usize,
        setup: LeveeSetup,
        dns: u16,
        fleet: &str,
        extra: &Extra<'_>,
    ) -> Member {
        let ip = extra
            .ip
            .map_or_else(|| format!("127.0.0.{}", n + 2), str::to_owned);
        let port = setup.port;
        let admin = free_port();
        let config = format!(
            r#"pid_file = "{pid}"
[log]
access = "off"
level = "info"

[[listener]]
address = "{ip}:{port}"

[[route]]
respond = "hello from m{n}"

[admin]
address = "127.0.0.1:{admin}"

[fleet]
instance = "m{n}"
heartbeat = "200ms"
heartbeat_ttl = "1s"
public_addresses = ["{ip}"]
{fleet}

{dns}
"#,
            pid = setup.pid_file().display(),
            dns = dns_section(&ip, dns, extra),
        );
        let mut levee = setup.spawn(&config);
        levee.wait_port(admin);
        Member {
            n,
            levee,
            ip,
            port,
            dns,
            admin,
        }
    }

    pub fn metric(&self, series: &str) -> f64 {
        metric(self.admin, series).unwrap_or(0.0)
    }

    /// `levee ctl fleet ARGS` against this member.
    pub fn ctl_fleet(&self, args: &[&str]) -> String {
        let admin = format!("127.0.0.1:{}", self.admin);
        let mut all = vec!["ctl", "--admin", &admin, "fleet"];
        all.extend_from_slice(args);
        let out = levee_cmd(&all);
        assert!(
            out.status.success(),
            "ctl fleet {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The addresses this member's DNS answers for `www` (type `t`), sorted.
    pub fn www(&self, t: &str) -> Vec<String> {
        addresses(&self.ip, self.dns, &format!("www.{ZONE}"), t)
    }
}

/// One levee serving DNS on 127.0.0.1 (no fleet), with an admin listener.
pub struct Single {
    pub levee: Levee,
    pub dns: u16,
    pub admin: u16,
}

/// Starts a [`Single`] with `dns_extra` in `[dns]` and a zone
/// `example.test` (`ns1.example.test`) with `zone_extra`.
pub fn single(dns_extra: &str, zone_extra: &str) -> Single {
    let setup = LeveeSetup::new();
    let (dns, admin) = (free_port(), free_port());
    let config = format!(
        r#"pid_file = "{pid}"
[log]
access = "off"

[[listener]]
address = "127.0.0.1:{port}"

[[route]]
respond = "x"

[admin]
address = "127.0.0.1:{admin}"

[dns]
listen = "127.0.0.1:{dns}"
{dns_extra}

[[dns.zone]]
name = "{ZONE}"
ns = "ns1.{ZONE}"
{zone_extra}
"#,
        pid = setup.pid_file().display(),
        port = setup.port,
    );
    let mut levee = setup.spawn(&config);
    levee.wait_port(admin);
    Single { levee, dns, admin }
}

impl Single {
    /// `dig` at this levee with `args`.
    pub fn dig(&self, args: &[&str]) -> String {
        dig("127.0.0.1", self.dns, args)
    }

    /// A series from its `/metrics` (0 when absent).
    pub fn metric(&self, series: &str) -> f64 {
        metric(self.admin, series).unwrap_or(0.0)
    }
}

/// `dig` at `server`:`port` with `args`; its standard output.
pub fn dig(server: &str, port: u16, args: &[&str]) -> String {
    let out = Command::new("dig")
        .arg(format!("@{server}"))
        .args(["-p", &port.to_string(), "+tries=1", "+time=3"])
        .args(args)
        .output()
        .expect("run dig (dnsutils)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The sorted `+short` answers for `name` of type `t`.
pub fn addresses(server: &str, port: u16, name: &str, t: &str) -> Vec<String> {
    let mut v: Vec<String> = dig(server, port, &["+short", "+norec", name, t])
        .lines()
        .filter(|l| !l.starts_with(';') && !l.is_empty())
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

/// The status dig reports (`NOERROR`, `REFUSED`, ...).
pub fn status(out: &str) -> &str {
    out.split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("")
}

/// Polls until every member in `members` answers `want` for `www`, or
/// `timeout`; returns what each answered last.
pub fn wait_answers(members: &[&Member], want: &[&str], timeout: Duration) -> Result<(), String> {
    let mut last = Vec::new();
    let ok = poll(timeout, || {
        last = members.iter().map(|m| m.www("A")).collect::<Vec<_>>();
        last.iter().all(|a| a == want).then_some(())
    });
    ok.ok_or_else(|| format!("wanted {want:?} from every member; got {last:?}"))
}
