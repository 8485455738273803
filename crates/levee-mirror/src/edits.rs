//! The mirror list as the control API changes it: mirrors added or edited
//! there are laid over the config's (same name: the API's wins) and kept
//! in `STATE_DIR/mirrors.toml`, so they survive reloads and restarts;
//! switching a mirror on or off is live state ([`crate::mirror::Live`]).
//!
//! Fleet seam: every change of the list goes through [`MirrorSet::put`];
//! when `[fleet]` shares the list through Redis, that is where a change
//! is published, and a change heard from the fleet is applied with the
//! same call.

use std::path::{Path, PathBuf};

use levee_config::Mirror;

use crate::MirrorError;
use crate::set::MirrorSet;

const FILE: &str = "mirrors.toml";

#[derive(Debug, Default)]
pub struct Edits {
    mirrors: Vec<Mirror>,
    file: Option<PathBuf>,
}

impl Edits {
    /// What an earlier run saved; a file that does not read is logged and
    /// ignored (the config's list still stands).
    pub fn load(state_dir: &Path) -> Edits {
        let file = state_dir.join(FILE);
        let mut edits = Edits {
            mirrors: Vec::new(),
            file: Some(file.clone()),
        };
        let Ok(text) = std::fs::read_to_string(&file) else {
            return edits;
        };
        let table: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "ignoring saved mirror edits");
                return edits;
            }
        };
        let list = table
            .get("mirror")
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default();
        for (i, entry) in list.iter().enumerate() {
            let text = toml::to_string(entry).unwrap_or_default();
            match levee_config::mirror_from_toml(&text, &format!("mirror[{i}]")) {
                Ok(m) => edits.mirrors.push(m),
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e, "ignoring a saved mirror")
                }
            }
        }
        edits
    }

    /// The config's mirrors with the edits over them, then the added ones;
    /// each with whether it comes from the config.
    pub fn list(&self, config: &[Mirror]) -> Vec<(Mirror, bool)> {
        let mut out: Vec<(Mirror, bool)> = config
            .iter()
            .map(|m| match self.mirrors.iter().find(|e| e.name == m.name) {
                Some(edited) => (edited.clone(), false),
                None => (m.clone(), true),
            })
            .collect();
        for e in &self.mirrors {
            if !config.iter().any(|m| m.name == e.name) {
                out.push((e.clone(), false));
            }
        }
        out
    }

    fn put(&mut self, m: Mirror) -> std::io::Result<()> {
        match self.mirrors.iter_mut().find(|e| e.name == m.name) {
            Some(e) => *e = m,
            None => self.mirrors.push(m),
        }
        self.save()
    }

    fn save(&self) -> std::io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let list: Vec<toml::Value> = self
            .mirrors
            .iter()
            .map(|m| toml::Value::Table(levee_config::mirror_to_toml(m)))
            .collect();
        let mut root = toml::Table::new();
        root.insert("mirror".into(), toml::Value::Array(list));
        let text = format!(
            "# Mirrors added or changed through levee's control API.\n{}",
            toml::to_string(&root).unwrap_or_default()
        );
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, file)
    }
}

impl MirrorSet {
    /// Adds mirror `m`, or replaces the one of its name (control API).
    /// A mirror whose URLs changed is scanned again before it is offered.
    pub fn put(&self, m: Mirror) -> Result<(), MirrorError> {
        let mut edits = self.edits.lock().map_err(|_| MirrorError::Poisoned)?;
        edits.put(m).map_err(|source| MirrorError::State {
            path: self.state_path(FILE),
            source,
        })?;
        let view = self.view();
        let settings = self.settings();
        let mirrors = edits
            .list(&settings.mirrors)
            .into_iter()
            .map(|(m, from_config)| {
                let before = view.mirrors.iter().find(|o| o.profile.name() == m.name);
                crate::set::keep(before, m, from_config, &settings, view.tree.generation)
            })
            .collect();
        self.store_mirrors(mirrors);
        drop(edits);
        self.scan_now.notify_one();
        Ok(())
    }

    /// Switches mirror `name` on or off; `false` if there is none.
    pub fn switch(&self, name: &str, on: bool) -> bool {
        let view = self.view();
        match view.mirrors.iter().find(|m| m.profile.name() == name) {
            Some(m) => {
                m.live.set_enabled(on);
                true
            }
            None => false,
        }
    }
}
