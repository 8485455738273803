//! Lua scripts other crates keep their shared state with on the fleet's
//! Redis, and what they decided alone while it was away and owe it.

use std::sync::Mutex;

use crate::Fleet;

/// One script call: what [`Fleet::run_script`] takes.
#[derive(Debug)]
pub struct Call {
    pub script: &'static Script,
    pub keys: Vec<String>,
    pub args: Vec<i64>,
}

/// What another crate decided alone while Redis was away and must charge
/// to it before shared state resumes (the mail guard's failures), as the
/// rate limits charge their [`Debts`].
pub trait Owed: Send + Sync {
    /// Takes what is owed to `fleet`'s Redis, as one call; `None` when
    /// nothing is.
    fn take(&self, fleet: &Fleet) -> Option<Call>;
    /// A taken call Redis did not run: owed again.
    fn unpaid(&self, call: Call);
}

pub(crate) static OWED: Mutex<Vec<std::sync::Weak<dyn Owed>>> = Mutex::new(Vec::new());

/// Registers what may owe Redis; charged by whichever fleet this process
/// is a member of when its Redis comes back.
pub fn register_owed(owed: std::sync::Weak<dyn Owed>) {
    let mut all = OWED.lock().unwrap_or_else(|p| p.into_inner());
    all.retain(|w| w.strong_count() > 0);
    all.push(owed);
}

/// A Lua script another crate keeps its shared state with (the mail
/// guard's counts, for one); run with [`Fleet::run_script`]. Sent by its
/// SHA-1 and loaded again after `NOSCRIPT`, as after a restart of Redis.
pub struct Script(redis::Script);

impl Script {
    pub fn new(code: &str) -> Script {
        Script(redis::Script::new(code))
    }

    pub(crate) fn invocation(&self, keys: &[String], args: &[i64]) -> redis::ScriptInvocation<'_> {
        let mut call = self.0.prepare_invoke();
        for k in keys {
            call.key(k);
        }
        for a in args {
            call.arg(*a);
        }
        call
    }
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Script").field(&self.0.get_hash()).finish()
    }
}
