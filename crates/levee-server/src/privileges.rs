//! `user` and `group`: levee binds its sockets as root, then becomes that
//! user for good, before any request is read and before any other thread
//! exists.
//!
//! For good means: the supplementary groups are replaced (`setgroups`),
//! then the group and the user are set in all of real, effective and saved
//! (`setgid`, `setuid` as root), so no id is left to return to; leaving
//! uid 0 clears every capability; and `no_new_privs` is set, so no program
//! levee runs (a binary upgrade's) can gain any through set-user-id bits or
//! file capabilities. libc applies each call to every thread of the
//! process, though there is only the one here.

use std::fmt;

use levee_config::Config;
use nix::unistd::{Gid, Group, Uid, User};

/// Who levee is to run as, looked up by name (or number) through NSS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user: String,
    pub uid: Uid,
    pub gid: Gid,
}

/// Why levee cannot become its `user`/`group`.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error("no user `{0}` on this machine")]
    NoUser(String),
    #[error("no group `{0}` on this machine")]
    NoGroup(String),
    #[error("looking up `{0}`: {1}")]
    Lookup(String, nix::Error),
    #[error(
        "levee must be started as root to run as `{user}` (it runs as uid {uid}); \
         or start it as that user, without the right to bind ports below 1024"
    )]
    NotRoot { user: String, uid: u32 },
    #[error("{step}: {source}")]
    Drop {
        step: Step,
        #[source]
        source: nix::Error,
    },
}

/// The step of the drop that failed.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    Groups,
    Gid,
    Uid,
    NoNewPrivs,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Groups => "setgroups",
            Step::Gid => "setgid",
            Step::Uid => "setuid",
            Step::NoNewPrivs => "prctl(PR_SET_NO_NEW_PRIVS)",
        })
    }
}

/// The account `config` names, if any: `user`, and `group` or else the
/// user's primary group.
pub fn account(config: &Config) -> Result<Option<Account>, PrivilegeError> {
    let Some(name) = &config.user else {
        return Ok(None);
    };
    let user = lookup_user(name)?;
    let gid = match &config.group {
        Some(g) => lookup_group(g)?,
        None => user.gid,
    };
    Ok(Some(Account {
        user: user.name,
        uid: user.uid,
        gid,
    }))
}

fn lookup_user(name: &str) -> Result<User, PrivilegeError> {
    let found = match name.parse::<u32>() {
        Ok(n) => User::from_uid(Uid::from_raw(n)),
        Err(_) => User::from_name(name),
    };
    found
        .map_err(|e| PrivilegeError::Lookup(name.to_owned(), e))?
        .ok_or_else(|| PrivilegeError::NoUser(name.to_owned()))
}

fn lookup_group(name: &str) -> Result<Gid, PrivilegeError> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(Gid::from_raw(n));
    }
    Group::from_name(name)
        .map_err(|e| PrivilegeError::Lookup(name.to_owned(), e))?
        .map(|g| g.gid)
        .ok_or_else(|| PrivilegeError::NoGroup(name.to_owned()))
}

/// Whether this process could become `account`: it is root, or already is
/// that user and group (a binary upgrade's new process, started by the
/// old one after its drop; or a service started with `User=`).
pub fn can_become(account: &Account) -> Result<(), PrivilegeError> {
    let (uid, gid) = (Uid::current(), Gid::current());
    if uid.is_root() || (uid == account.uid && gid == account.gid) {
        return Ok(());
    }
    Err(PrivilegeError::NotRoot {
        user: account.user.clone(),
        uid: uid.as_raw(),
    })
}

/// Becomes `account` for good (see the module's text). Already that user
/// (not root): only `no_new_privs` is set.
pub fn drop_to(account: &Account) -> Result<(), PrivilegeError> {
    can_become(account)?;
    let step = |step| move |source| PrivilegeError::Drop { step, source };
    if Uid::current().is_root() {
        nix::unistd::setgroups(&[account.gid]).map_err(step(Step::Groups))?;
        nix::unistd::setgid(account.gid).map_err(step(Step::Gid))?;
        nix::unistd::setuid(account.uid).map_err(step(Step::Uid))?;
    }
    rustix::thread::set_no_new_privs(true).map_err(|e| PrivilegeError::Drop {
        step: Step::NoNewPrivs,
        source: nix::Error::from_raw(e.raw_os_error()),
    })?;
    tracing::info!(
        user = %account.user,
        uid = account.uid.as_raw(),
        gid = account.gid.as_raw(),
        "running as an unprivileged user"
    );
    Ok(())
}

/// Gives `path` (a file levee made as root: its pid file, its control
/// socket) to `account`, so levee can still rewrite it after the drop.
pub fn give(path: &std::path::Path, account: &Account) -> std::io::Result<()> {
    let uid = rustix::fs::Uid::from_raw(account.uid.as_raw());
    let gid = rustix::fs::Gid::from_raw(account.gid.as_raw());
    Ok(rustix::fs::chown(path, Some(uid), Some(gid))?)
}
