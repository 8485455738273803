//! A real Postfix `smtpd` on a free loopback port, with its own config,
//! queue and data directories, as an SMTP submission backend.
//!
//! It runs `master -c DIR -d` in the foreground (as root, like CI), in its
//! own process group so drop can stop it. Logins are checked by a Dovecot's
//! SASL service over TCP (Postfix has no password store of its own); what
//! an authenticated client sends is relayed to `relay`; XCLIENT is trusted
//! from loopback, as `forward_client_address` needs. No service is
//! chrooted, so nothing from `/etc` has to be copied in.

use std::fs;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use super::*;

const MASTER: &str = "/usr/lib/postfix/sbin/master";

pub struct Postfix {
    child: Child,
    pub port: u16,
    dir: TempDir,
}

/// The services a relaying smtpd needs, none chrooted.
const SERVICES: &str = "pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
";

impl Postfix {
    /// Postfix authenticating against Dovecot's SASL listener on
    /// `sasl_port` and relaying to the SMTP server on `relay`.
    pub fn start(sasl_port: u16, relay: u16) -> Postfix {
        Postfix::start_with(sasl_port, relay, "")
    }

    /// Like [`Postfix::start`], with `extra` lines appended to `main.cf`.
    pub fn start_with(sasl_port: u16, relay: u16, extra: &str) -> Postfix {
        assert!(
            Path::new(MASTER).exists(),
            "postfix not installed: run scripts/test"
        );
        let dir = TempDir::new("postfix");
        let port = free_port();
        let d = dir.path().display().to_string();
        for sub in ["conf", "queue", "data"] {
            fs::create_dir_all(dir.join(sub)).expect("mkdir");
        }
        // The master's lock file lives here, written as the mail owner.
        let postfix_ids = Command::new("id")
            .args(["-u", "postfix"])
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<u32>()
                    .ok()
            })
            .expect("a postfix user");
        std::os::unix::fs::chown(dir.join("data"), Some(postfix_ids), None).expect("chown");
        let main = format!(
            "compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix-test.example
mydestination =
alias_maps =
local_recipient_maps =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
maillog_file_prefixes = {d}
maillog_file = {d}/maillog
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:127.0.0.1:{sasl_port}
smtpd_authorized_xclient_hosts = 127.0.0.0/8
smtpd_client_port_logging = yes
smtpd_relay_restrictions = permit_sasl_authenticated, reject
relayhost = [127.0.0.1]:{relay}
{extra}"
        );
        fs::write(dir.join("conf/main.cf"), main).expect("write main.cf");
        let master = format!("127.0.0.1:{port} inet n - n - - smtpd\n{SERVICES}");
        fs::write(dir.join("conf/master.cf"), master).expect("write master.cf");
        let conf = dir.join("conf");
        // Creates the queue's directories with their owners and modes.
        let check = Command::new("postfix")
            .arg("-c")
            .arg(&conf)
            .arg("check")
            .output()
            .expect("run postfix check");
        assert!(
            check.status.success(),
            "postfix check failed (see {d}/maillog):\n{}",
            fs::read_to_string(dir.join("maillog")).unwrap_or_default()
        );
        let mut child = Command::new(MASTER)
            .arg("-c")
            .arg(&conf)
            .arg("-d")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("stderr.log")).expect("create stderr log"))
            .process_group(0)
            .spawn()
            .expect("spawn postfix master");
        wait_listening(
            &mut child,
            [127, 0, 0, 1],
            port,
            "postfix",
            &[dir.join("stderr.log"), dir.join("maillog")],
        );
        Postfix { child, port, dir }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("maillog")).unwrap_or_default()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}
