//! A config pushed through the fleet (`levee ctl fleet push`, docs/fleet.md
//! "Config rollout"), applied by this member as a reload:
//!
//! ```text
//! write it beside the config file (temp file, fsync)
//!   ─▶ parse it and hold it to this machine (preflight::machine: `levee check`'s errors)
//!   ─▶ apply it: Server::apply, the one reload, all or nothing
//!   ─▶ rename it over the config file, fsync the directory
//!   ─▶ report to Redis: applied, or every error (FILE:LINE:COLUMN: KEY: MESSAGE)
//! ```
//!
//! A refused push leaves the running config and the file as they were. The
//! file on disk is the truth: levee starts from it, so a member that
//! restarts without Redis comes up on its last applied push. The rename
//! comes after the reload: a crash between the two leaves the previous
//! file, which the member restarts on, as it would after a crash before
//! the push.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use levee_config::{Config, ConfigError, Locator, RedisTarget};
use levee_fleet::push::{Report, Status};

use crate::fleet::Push;
use crate::{Server, preflight};

/// How long a report is tried while Redis does not take it (a member that
/// rejoined with a changed `[fleet]` connects first).
const REPORT_FOR: Duration = Duration::from_secs(15);

impl Server {
    /// Checks and applies `push`, then reports how it went.
    pub(crate) fn apply_push(&mut self, push: Push) {
        let report = self.take_push(&push.config);
        match report.status {
            Status::Applied => {
                tracing::info!(id = %push.id, from = %push.from, file = %report.file, "fleet: pushed config applied")
            }
            Status::Unsaved => tracing::error!(
                id = %push.id,
                from = %push.from,
                error = %report.errors.join("; "),
                "fleet: pushed config applied but not saved; a restart would use the old file"
            ),
            Status::Refused => {
                for line in &report.errors {
                    tracing::error!("{line}");
                }
                tracing::error!(id = %push.id, from = %push.from, errors = report.errors.len(), "fleet: pushed config refused; the running config stays");
            }
        }
        let instance = self.fleet.fleet().map(|f| f.instance().to_owned());
        let Some(instance) = instance else { return };
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + REPORT_FOR;
            loop {
                if let Some(f) = levee_fleet::current()
                    && levee_fleet::push::report(&f.link, f.name(), &push.id, &instance, &report)
                        .await
                        .is_ok()
                {
                    return;
                }
                if tokio::time::Instant::now() >= deadline {
                    tracing::warn!(id = %push.id, "fleet: the push's report could not be written to Redis");
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    }

    fn take_push(&mut self, text: &str) -> Report {
        let refused = |file: &Path, config_hash: String, errors: Vec<String>| Report {
            status: Status::Refused,
            config_hash,
            file: file.display().to_string(),
            errors,
        };
        let Some(path) = self.config.source.clone() else {
            let why = "this member runs a built-in config: there is no file to rewrite".to_owned();
            return refused(
                Path::new(levee_config::BUILTIN_SOURCE),
                String::new(),
                vec![why],
            );
        };
        // The real file, so a config reached through a symlink is rewritten
        // where it lives, not replaced by a file at the link.
        let target = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        let staged = match Staged::write(&target, text) {
            Ok(s) => s,
            Err(e) => {
                let why = format!("cannot write {}: {e}", target.display());
                return refused(&path, String::new(), vec![why]);
            }
        };
        // Parsed and checked as the staged file, so errors point into the
        // pushed text; then named after the config file it would become.
        let named = |errors: Vec<ConfigError>| -> Vec<String> {
            errors
                .into_iter()
                .map(|e| {
                    ConfigError {
                        file: path.clone(),
                        ..e
                    }
                    .to_string()
                })
                .collect()
        };
        let mut config = match levee_config::parse(text, &staged.tmp) {
            Ok(c) => c,
            Err(e) => return refused(&path, String::new(), named(e.errors)),
        };
        let hash = levee_fleet::config_hash(&config);
        let mut errors = self.stays_in_fleet(&config);
        errors.extend(preflight::machine(&config).errors);
        if !errors.is_empty() {
            errors.sort_by_key(|e| (e.line, e.column));
            return refused(&path, hash, named(errors));
        }
        config.source = Some(path.clone());
        if let Err(e) = self.apply(config) {
            return refused(&path, hash, e.lines());
        }
        match staged.commit() {
            Ok(()) => Report {
                status: Status::Applied,
                config_hash: hash,
                file: path.display().to_string(),
                errors: Vec::new(),
            },
            Err(e) => Report {
                status: Status::Unsaved,
                config_hash: hash,
                file: path.display().to_string(),
                errors: vec![format!("cannot save over {}: {e}", target.display())],
            },
        }
    }

    /// A push travels through the fleet and is reported through it, so it
    /// may not take this member out of it, nor rename it.
    fn stays_in_fleet(&self, config: &Config) -> Vec<ConfigError> {
        let Some(running) = &self.config.fleet else {
            return Vec::new();
        };
        let at = Locator::new(config);
        let Some(pushed) = &config.fleet else {
            return vec![at.error(
                "fleet",
                "a pushed config must keep [fleet]: without it this member would leave the \
                 fleet (change that with a reload on the member)",
            )];
        };
        let mut errors = Vec::new();
        if pushed.name != running.name {
            errors.push(at.error(
                "fleet.name",
                format!(
                    "a push cannot move a member to another fleet (this one is `{}`)",
                    running.name
                ),
            ));
        }
        if pushed.redis != running.redis {
            let key = match pushed.redis {
                RedisTarget::Single(_) => "fleet.redis",
                RedisTarget::Sentinel { .. } => "fleet.sentinel",
                RedisTarget::Cluster(_) => "fleet.cluster",
            };
            errors.push(at.error(
                key,
                "a push cannot point a member at another Redis: it reports through this one \
                 (change that with a reload on each member)",
            ));
        }
        let me = self.fleet.fleet().map(|f| f.instance().to_owned());
        if let (Some(named), Some(me)) = (&pushed.instance, me)
            && *named != me
        {
            errors.push(at.error(
                "fleet.instance",
                format!(
                    "a pushed config may not name the member: every member would be `{named}` \
                     (this one is `{me}`); leave `instance` out and each member uses its host name"
                ),
            ));
        }
        errors
    }
}

/// A pushed config written beside the config file, not yet in its place;
/// removed if dropped before [`Staged::commit`].
struct Staged {
    tmp: PathBuf,
    target: PathBuf,
    done: bool,
}

impl Staged {
    /// Writes `text` to a temp file in `target`'s directory (so the rename
    /// stays on one file system), with `target`'s permissions, and syncs it.
    fn write(target: &Path, text: &str) -> std::io::Result<Staged> {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "levee.toml".to_owned());
        let tmp = target.with_file_name(format!(".{name}.push-{}.tmp", std::process::id()));
        let staged = Staged {
            tmp,
            target: target.to_path_buf(),
            done: false,
        };
        // Readable by levee alone until it has the file's own permissions:
        // a config may hold a secret (a mail master password).
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&staged.tmp)?;
        if let Ok(meta) = std::fs::metadata(target) {
            file.set_permissions(meta.permissions())?;
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        Ok(staged)
    }

    /// Puts the file in place (an atomic rename) and syncs the directory,
    /// so the new name survives a power cut.
    fn commit(mut self) -> std::io::Result<()> {
        std::fs::rename(&self.tmp, &self.target)?;
        self.done = true;
        if let Some(dir) = self.target.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_staged_file_is_renamed_into_place_or_removed() {
        let dir = std::env::temp_dir().join(format!("levee-push-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let target = dir.join("levee.toml");
        std::fs::write(&target, "old\n").expect("write");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::Permissions::from_mode(0o640);
        std::fs::set_permissions(&target, mode).expect("chmod");
        let staged = Staged::write(&target, "new\n").expect("staged");
        assert_eq!(std::fs::read_to_string(&staged.tmp).expect("tmp"), "new\n");
        let perms = std::fs::metadata(&staged.tmp).expect("tmp").permissions();
        assert_eq!(perms.mode() & 0o777, 0o640, "the file's own permissions");
        assert_eq!(std::fs::read_to_string(&target).expect("old"), "old\n");
        let tmp = staged.tmp.clone();
        staged.commit().expect("commit");
        assert_eq!(std::fs::read_to_string(&target).expect("new"), "new\n");
        assert!(!tmp.exists());
        // Dropped before its commit: the temp file goes, the file stays.
        let staged = Staged::write(&target, "refused\n").expect("staged");
        let tmp = staged.tmp.clone();
        drop(staged);
        assert!(!tmp.exists());
        assert_eq!(std::fs::read_to_string(&target).expect("kept"), "new\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
