//! A real Dovecot (IMAP and POP3) on free loopback ports with its own
//! config, state and mail directories, as a mail backend.
//!
//! Users live in a passwd-file with plain passwords; mail is stored as
//! Maildir owned by `nobody`, since Dovecot will not serve mail as root.

use std::fs;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use super::*;

/// Mail is accessed as this uid/gid (`nobody`/`nogroup`).
const MAIL_ID: u32 = 65534;

pub struct Dovecot {
    child: Child,
    pub imap_port: u16,
    pub pop3_port: u16,
    dir: TempDir,
}

impl Dovecot {
    /// Dovecot serving `users` (name, password); each gets one message in INBOX
    /// whose subject is `hello NAME`, with an `X-Instance` header holding
    /// this Dovecot's IMAP port.
    pub fn start(users: &[(&str, &str)]) -> Dovecot {
        Dovecot::start_with(users, "")
    }

    /// Like [`Dovecot::start`], with `extra` appended to the config.
    pub fn start_with(users: &[(&str, &str)], extra: &str) -> Dovecot {
        let bin = nginx::find_in_path("dovecot")
            .unwrap_or_else(|| panic!("dovecot not installed: run scripts/test"));
        let dir = TempDir::new("dovecot");
        let (imap_port, pop3_port) = (free_port(), free_port());
        let d = dir.path().display().to_string();
        let mut passwd = String::new();
        for (user, pass) in users {
            passwd.push_str(&format!(
                "{user}:{{PLAIN}}{pass}:{MAIL_ID}:{MAIL_ID}::{d}/home/{user}\n"
            ));
            let new = dir.join(&format!("mail/{user}/new"));
            fs::create_dir_all(&new).expect("mkdir maildir");
            for sub in ["cur", "tmp"] {
                fs::create_dir_all(dir.join(&format!("mail/{user}/{sub}"))).expect("mkdir");
            }
            fs::write(
                new.join("1000000000.M1P1.levee"),
                format!("From: test@example.org\r\nTo: {user}@example.org\r\nSubject: hello {user}\r\nX-Instance: {imap_port}\r\n\r\nBody for {user}.\r\n"),
            )
            .expect("write message");
            fs::create_dir_all(dir.join(&format!("home/{user}"))).expect("mkdir home");
        }
        for sub in ["mail", "home"] {
            chown_tree(&dir.join(sub));
        }
        fs::write(dir.join("passwd"), passwd).expect("write passwd");
        let conf = format!(
            r#"
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:{d}/mail/%u
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = {d}/passwd
}}
userdb {{
  driver = passwd-file
  args = {d}/passwd
}}
service imap-login {{
  inet_listener imap {{
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service submission-login {{
  inet_listener submission {{
    port = 0
  }}
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
{extra}
"#
        );
        let conf_path = dir.join("dovecot.conf");
        fs::write(&conf_path, conf).expect("write dovecot.conf");
        let mut child = Command::new(bin)
            .arg("-F")
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("stderr.log")).expect("create stderr log"))
            .process_group(0)
            .spawn()
            .expect("spawn dovecot");
        let up = poll(START_TIMEOUT, || {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(Err(status));
            }
            (port_open(imap_port) && port_open(pop3_port)).then_some(Ok(()))
        });
        if !matches!(up, Some(Ok(()))) {
            let log = fs::read_to_string(dir.join("dovecot.log")).unwrap_or_default();
            let stderr = fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
            kill_group(&mut child);
            panic!("dovecot did not start ({up:?}):\n{stderr}\n{log}");
        }
        Dovecot {
            child,
            imap_port,
            pop3_port,
            dir,
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default()
    }
}

fn chown_tree(path: &std::path::Path) {
    let _ = std::os::unix::fs::chown(path, Some(MAIL_ID), Some(MAIL_ID));
    if let Ok(entries) = fs::read_dir(path) {
        for e in entries.flatten() {
            chown_tree(&e.path());
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}
