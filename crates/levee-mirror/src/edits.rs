//! The mirror list as the control API changes it. The config file's
//! mirrors are the base; runtime edits lie over them, one [`Edit`] per
//! mirror name: a whole mirror table (added, or replacing the file's of
//! that name) and/or a switch (`enabled`, over whichever table stands).
//! An edit stands until it is reset ([`MirrorSet::reset`]), across reloads
//! and restarts: it is kept in `STATE_DIR/mirrors.toml`.
//!
//! Every change of the list goes through [`MirrorSet::put`],
//! [`MirrorSet::switch`] or [`MirrorSet::reset`]. In a fleet the edits are
//! also the set's shared table in Redis ([`shared`]): a local edit is
//! marked unsent until it is written there, and an edit heard from the
//! fleet is applied with [`MirrorSet::apply_shared`].

pub mod shared;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use levee_config::Mirror;
use serde_json::{Value, json};

use crate::MirrorError;
use crate::set::MirrorSet;

const FILE: &str = "mirrors.toml";

/// One mirror's runtime edit.
#[derive(Debug, Clone, PartialEq)]
pub struct Edit {
    /// A whole table from the API: an added mirror, or one that replaces
    /// the config file's of the same name.
    pub mirror: Option<Mirror>,
    /// Switched on or off through the API, over the table's `enabled`.
    pub enabled: Option<bool>,
}

impl Edit {
    /// The shared form (a row of the fleet's table):
    /// `{"mirror": TABLE, "enabled": BOOL}`, either may be absent.
    pub fn to_json(&self) -> Value {
        let mut v = json!({});
        if let Some(m) = &self.mirror {
            v["mirror"] =
                serde_json::to_value(levee_config::mirror_to_toml(m)).unwrap_or(Value::Null);
        }
        if let Some(on) = self.enabled {
            v["enabled"] = Value::Bool(on);
        }
        v
    }

    /// Reads the shared form, holding the table to the config's rules.
    pub fn from_json(v: &Value) -> Result<Edit, String> {
        let mirror = match v.get("mirror") {
            None | Some(Value::Null) => None,
            Some(table) => Some(mirror_from_json(table).map_err(|errors| errors.join("; "))?),
        };
        let enabled = match v.get("enabled") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err("`enabled` must be true or false".into()),
        };
        if mirror.is_none() && enabled.is_none() {
            return Err("an edit names neither a mirror nor a switch".into());
        }
        Ok(Edit { mirror, enabled })
    }
}

/// A mirror table in JSON (the API's body, a shared row) read with the
/// rules of `[[mirrors.SET.mirror]]`; the errors as `KEY: MESSAGE`.
pub fn mirror_from_json(table: &Value) -> Result<Mirror, Vec<String>> {
    let Value::Object(fields) = table else {
        return Err(vec!["expected a JSON object".into()]);
    };
    let mut fields = fields.clone();
    // Nulls mean "not set" in JSON; TOML has no null.
    fields.retain(|_, v| !v.is_null());
    let text = toml::to_string(&Value::Object(fields))
        .map_err(|_| vec!["the object does not map to a mirror table".to_owned()])?;
    levee_config::mirror_from_toml(&text, "mirror").map_err(|e| {
        e.errors
            .iter()
            .map(|e| format!("{}: {}", e.key, e.message))
            .collect()
    })
}

/// Where a listed mirror comes from (`source` in the API,
/// `levee ctl mirrors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The config file, unedited.
    Config,
    /// The config file, edited or switched at run time.
    Edited,
    /// Added at run time.
    Api,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Config => "config",
            Source::Edited => "config+api",
            Source::Api => "api",
        }
    }
}

#[derive(Debug, Default)]
pub struct Edits {
    /// In the order they were first made (added mirrors list in it).
    edits: Vec<(String, Edit)>,
    file: Option<PathBuf>,
    /// Fleet: names whose edit (or reset) Redis has not got yet.
    pub(crate) unsent: BTreeSet<String>,
    /// Fleet: the version each name's edit was last stored or heard as.
    pub(crate) versions: std::collections::HashMap<String, u64>,
}

impl Edits {
    /// What an earlier run saved; a file that does not read is logged and
    /// ignored (the config's list still stands).
    pub fn load(state_dir: &Path) -> Edits {
        let file = state_dir.join(FILE);
        let mut edits = Edits {
            file: Some(file.clone()),
            ..Edits::default()
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
                Ok(m) => {
                    let name = m.name.clone();
                    edits.entry(&name).mirror = Some(m);
                }
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e, "ignoring a saved mirror")
                }
            }
        }
        if let Some(switched) = table.get("enabled").and_then(|v| v.as_table()) {
            for (name, on) in switched {
                if let Some(on) = on.as_bool() {
                    edits.entry(name).enabled = Some(on);
                }
            }
        }
        if let Some(unsent) = table
            .get("fleet")
            .and_then(|f| f.get("unsent"))
            .and_then(|u| u.as_array())
        {
            edits.unsent = unsent
                .iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect();
        }
        edits
    }

    fn entry(&mut self, name: &str) -> &mut Edit {
        let at = match self.edits.iter().position(|(n, _)| n == name) {
            Some(at) => at,
            None => {
                self.edits.push((
                    name.to_owned(),
                    Edit {
                        mirror: None,
                        enabled: None,
                    },
                ));
                self.edits.len() - 1
            }
        };
        &mut self.edits[at].1
    }

    pub fn get(&self, name: &str) -> Option<&Edit> {
        self.edits.iter().find(|(n, _)| n == name).map(|(_, e)| e)
    }

    /// Every edit, by name.
    pub fn all(&self) -> impl Iterator<Item = (&str, &Edit)> {
        self.edits.iter().map(|(n, e)| (n.as_str(), e))
    }

    /// Sets `name`'s edit (`None`: removes it); whether anything changed.
    pub(crate) fn set(&mut self, name: &str, edit: Option<Edit>) -> bool {
        let at = self.edits.iter().position(|(n, _)| n == name);
        match (at, edit) {
            (Some(at), Some(e)) if self.edits[at].1 == e => false,
            (Some(at), Some(e)) => {
                self.edits[at].1 = e;
                true
            }
            (None, Some(e)) => {
                self.edits.push((name.to_owned(), e));
                true
            }
            (Some(at), None) => {
                self.edits.remove(at);
                true
            }
            (None, None) => false,
        }
    }

    /// The config's mirrors with the edits over them, then the added
    /// ones; each with where it comes from. The `enabled` of each is the
    /// one in force (a switch over the table's).
    pub fn list(&self, config: &[Mirror]) -> Vec<(Mirror, Source)> {
        let mut out: Vec<(Mirror, Source)> = config
            .iter()
            .map(|m| match self.get(&m.name) {
                Some(e) => (over(m, e), Source::Edited),
                None => (m.clone(), Source::Config),
            })
            .collect();
        for (name, e) in &self.edits {
            if let Some(m) = &e.mirror
                && !config.iter().any(|c| c.name == *name)
            {
                out.push((over(m, e), Source::Api));
            }
        }
        out
    }

    pub(crate) fn save(&self) -> std::io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let list: Vec<toml::Value> = self
            .edits
            .iter()
            .filter_map(|(_, e)| e.mirror.as_ref())
            .map(|m| toml::Value::Table(levee_config::mirror_to_toml(m)))
            .collect();
        let switched: toml::Table = self
            .edits
            .iter()
            .filter_map(|(n, e)| e.enabled.map(|on| (n.clone(), toml::Value::Boolean(on))))
            .collect();
        let mut root = toml::Table::new();
        root.insert("mirror".into(), toml::Value::Array(list));
        root.insert("enabled".into(), toml::Value::Table(switched));
        if !self.unsent.is_empty() {
            let unsent = self
                .unsent
                .iter()
                .map(|n| toml::Value::String(n.clone()))
                .collect();
            let mut fleet = toml::Table::new();
            fleet.insert("unsent".into(), toml::Value::Array(unsent));
            root.insert("fleet".into(), toml::Value::Table(fleet));
        }
        let text = format!(
            "# Mirrors added, changed or switched through levee's control API.\n{}",
            toml::to_string(&root).unwrap_or_default()
        );
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, file)
    }
}

/// Table `m` with edit `e`'s switch over it.
fn over(m: &Mirror, e: &Edit) -> Mirror {
    let mut m = e.mirror.clone().unwrap_or_else(|| m.clone());
    if let Some(on) = e.enabled {
        m.enabled = on;
    }
    m
}

/// What a control-API change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// The set has no such mirror (or, for a reset, no edit of it).
    NoSuch,
}

impl MirrorSet {
    /// Adds mirror `m`, or replaces the one of its name (control API). The
    /// table states `enabled` itself, so an earlier switch is dropped. A
    /// mirror whose URLs changed is scanned again before it is offered.
    pub fn put(&self, m: Mirror) -> Result<(), MirrorError> {
        let name = m.name.clone();
        self.edit(&name, |_| {
            Some(Edit {
                mirror: Some(m),
                enabled: None,
            })
        })
        .map(|_| ())
    }

    /// Switches mirror `name` on or off, until reset; switching on also
    /// lifts an automatic disabling (on this member: each member's health
    /// is its own).
    pub fn switch(&self, name: &str, on: bool) -> Result<Outcome, MirrorError> {
        if !self.view().mirrors.iter().any(|m| m.profile.name() == name) {
            return Ok(Outcome::NoSuch);
        }
        self.edit(name, |before| {
            Some(Edit {
                mirror: before.and_then(|b| b.mirror.clone()),
                enabled: Some(on),
            })
        })?;
        self.forgive(name, on);
        Ok(Outcome::Done)
    }

    /// Forgets mirror `name`'s runtime edit: the config file's mirror of
    /// that name stands again, as the file has it, or, if the file has
    /// none, the mirror is removed.
    pub fn reset(&self, name: &str) -> Result<Outcome, MirrorError> {
        let had = self
            .edits
            .lock()
            .map_err(|_| MirrorError::Poisoned)?
            .get(name)
            .is_some();
        if !had {
            return Ok(Outcome::NoSuch);
        }
        self.edit(name, |_| None)?;
        Ok(Outcome::Done)
    }

    /// Sets `name`'s edit to what `f` makes of the current one, saves,
    /// marks it unsent when the list is shared, and rebuilds the view.
    fn edit(
        &self,
        name: &str,
        f: impl FnOnce(Option<&Edit>) -> Option<Edit>,
    ) -> Result<(), MirrorError> {
        let mut edits = self.edits.lock().map_err(|_| MirrorError::Poisoned)?;
        let new = f(edits.get(name));
        edits.set(name, new);
        if self.is_shared() {
            edits.unsent.insert(name.to_owned());
        }
        edits.save().map_err(|source| MirrorError::State {
            path: self.state_path(FILE),
            source,
        })?;
        self.rebuild(&edits);
        drop(edits);
        self.share_now.notify_one();
        Ok(())
    }

    /// Lays the edits over the current settings' mirrors into a new view
    /// (edits locked by the caller); a mirror that is new or whose URLs
    /// changed wakes the scan (a switch does not).
    pub(crate) fn rebuild(&self, edits: &Edits) {
        let view = self.view();
        let settings = self.settings();
        let mut rescan = false;
        let mirrors = edits
            .list(&settings.mirrors)
            .into_iter()
            .map(|(m, source)| {
                let before = view.mirrors.iter().find(|o| o.profile.name() == m.name);
                let now = crate::set::keep(before, m, source, view.tree.generation);
                rescan |= before.is_none_or(|b| !Arc::ptr_eq(&b.holdings, &now.holdings));
                now
            })
            .collect();
        self.store_mirrors(mirrors);
        if rescan {
            self.scan_now.notify_one();
        }
    }

    /// Switching on by hand lifts this member's automatic disabling.
    pub(crate) fn forgive(&self, name: &str, on: bool) {
        if let Some(m) = self
            .view()
            .mirrors
            .iter()
            .find(|m| m.profile.name() == name)
        {
            m.live.set_enabled(on);
        }
    }
}

#[cfg(test)]
mod tests;
