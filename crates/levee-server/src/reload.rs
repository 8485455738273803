//! The one reload, whatever asked for it (SIGHUP, `POST /reload`, a fleet
//! push): everything that can fail checked first, then applied.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use levee_config::{Config, ConfigErrors};

use levee_http::Site;
use levee_http::conn::FirstSteps;

use crate::upkeep::{AdminListener, Upkeep};
use crate::{
    ReloadError, Server, ServerError, acme, admin_access, dns, first_steps, fleet, listeners,
    notify, preflight, refused_bind,
};

/// Each mail listener's state, loaded (user maps read) before anything
/// changes: new listeners get a new [`levee_mail::Frontend`], existing ones
/// a new state to swap in.
pub(crate) struct MailPlan {
    pub(crate) new: Vec<(SocketAddr, Arc<levee_mail::Frontend>)>,
    pub(crate) swap: Vec<(Arc<levee_mail::Frontend>, levee_mail::front::FrontState)>,
}

pub(crate) fn plan_mail(
    config: &Config,
    running: &HashMap<SocketAddr, Arc<levee_mail::Frontend>>,
) -> Result<MailPlan, ServerError> {
    let mut plan = MailPlan {
        new: Vec::new(),
        swap: Vec::new(),
    };
    for l in &config.listeners {
        let Some(mail) = &l.mail else { continue };
        let err = |error| ServerError::Mail {
            addr: l.address,
            error,
        };
        match running.get(&l.address) {
            Some(front) => plan.swap.push((
                front.clone(),
                levee_mail::front::FrontState::load(mail).map_err(err)?,
            )),
            None => plan.new.push((
                l.address,
                levee_mail::Frontend::new(l.address, mail).map_err(err)?,
            )),
        }
    }
    Ok(plan)
}

/// A listener a reload adds: its address, first steps and sockets (one
/// per worker), bound before the reload can still fail.
type Opened = (SocketAddr, FirstSteps, Vec<Vec<std::net::TcpListener>>);

impl Server {
    /// Reloads (SIGHUP or `POST /reload`) and logs the outcome: each
    /// problem of a refused config on its own line.
    pub(crate) fn reload_logged(&mut self) -> Result<PathBuf, ReloadError> {
        notify::reloading();
        let result = self.reload();
        notify::ready();
        self.reopen_logs();
        match &result {
            Ok(path) => tracing::info!(file = %path.display(), "reloaded"),
            Err(ReloadError::Builtin) => {
                tracing::warn!("reload: levee runs a built-in config; nothing to reload")
            }
            Err(e) => {
                let lines = e.lines();
                for line in &lines {
                    tracing::error!("{line}");
                }
                tracing::error!(
                    errors = lines.len(),
                    "reload refused; the running config stays"
                );
            }
        }
        result
    }

    /// Applies the config file anew; on any error the running config stays.
    pub(crate) fn reload(&mut self) -> Result<PathBuf, ReloadError> {
        let path = self.config.source.clone().ok_or(ReloadError::Builtin)?;
        let config = levee_config::load(&path).map_err(ReloadError::Config)?;
        self.apply(config)?;
        Ok(path)
    }

    /// The one reload, whatever asked for it (SIGHUP, `POST /reload`, a
    /// fleet push): all or nothing. Everything that can fail is done
    /// before anything changes: the files loaded, the user maps read, the
    /// admin rules read, new addresses bound, new listeners' TLS loaded.
    /// One step needs the new membership first: a changed `[fleet]` is
    /// joined just before the site is built (its fleet-scoped limits find
    /// the fleet then); a site that then fails to build rejoins the old
    /// one. The certificate manager (`[acme]`) takes its new names after
    /// the fleet it shares certificates through, and gets the old ones back
    /// likewise. What stays outside, as logged: open listeners whose new
    /// certificates do not load keep the ones in use (tls.rs; `levee
    /// check` and a push refuse such a config first).
    pub(crate) fn apply(&mut self, config: Config) -> Result<(), ReloadError> {
        self.preflight(&config)?;
        let mail_plan = plan_mail(&config, &self.mail)?;
        let admin_access = admin_access(&config)?;
        let admin_socket = self.bind_admin(&config)?;
        // [dns]'s files loaded and its new sockets bound beside the running
        // ones; served once nothing else can fail.
        let dns_plan = dns::prepare(&config)?;
        for l in &config.listeners {
            let was_mail = self.mail.contains_key(&l.address);
            if self.listening.contains_key(&l.address) && was_mail != l.mail.is_some() {
                tracing::warn!(listener = %l.address, "reload: a change of `protocol` takes effect at the next start");
            }
        }
        let wanted: HashMap<SocketAddr, u32> = config
            .listeners
            .iter()
            .map(|l| (l.address, l.backlog))
            .collect();
        let opened = self.open_listeners(&config, &wanted)?;
        let site = self.build_site(&config, &opened)?;
        // Nothing fails from here on.
        self.shared.site.store(Arc::new(site));
        if let Err(e) = self.dns.apply(dns_plan) {
            // Only a thread or runtime that cannot start gets here.
            tracing::error!(error = %e, "reload: the new DNS server cannot start; the running one (if any) stays");
        }
        self.update_first_steps(&config);
        for (front, state) in mail_plan.swap {
            front.swap(state);
        }
        for (addr, front) in mail_plan.new {
            if !self.listening.contains_key(&addr) {
                self.mail.insert(addr, front);
            }
        }
        self.upkeep = Upkeep::start(&self.shared.site.load());
        self.reload_admin(&config, admin_access, admin_socket);
        for (addr, first, sockets) in opened {
            self.listen(addr, first, sockets);
        }
        let gone: Vec<SocketAddr> = self
            .listening
            .keys()
            .filter(|a| !wanted.contains_key(a))
            .copied()
            .collect();
        for addr in gone {
            self.unlisten(addr);
        }
        self.config = config;
        Ok(())
    }

    /// The files `levee check` and start-up load, refused here as there (a
    /// static root that is gone would answer 404 to everything), and the
    /// fleet's settings.
    fn preflight(&self, config: &Config) -> Result<(), ReloadError> {
        let mut errors = preflight::files(config);
        errors.extend(fleet::check(config));
        if !errors.is_empty() {
            return Err(ReloadError::Config(ConfigErrors { errors }));
        }
        if config.workers != self.config.workers {
            tracing::warn!("reload: a change of `workers` takes effect at the next start");
        }
        Ok(())
    }

    /// A moved admin listener is bound now, so an address in use refuses
    /// the reload instead of leaving levee without its admin listener.
    fn bind_admin(&self, config: &Config) -> Result<Option<std::net::TcpListener>, ServerError> {
        let admin_wanted = config.admin.as_ref().map(|a| a.address);
        Ok(match admin_wanted {
            Some(addr) if Some(addr) != self.admin.as_ref().map(|a| a.addr) => Some(
                AdminListener::bind(addr)
                    .map_err(|e| refused_bind(config, "admin.address".into(), addr, &e))?,
            ),
            _ => None,
        })
    }

    /// The new listeners' sockets (one per worker, as at start) and first
    /// steps (TLS, PROXY header), not served yet.
    fn open_listeners(
        &mut self,
        config: &Config,
        wanted: &HashMap<SocketAddr, u32>,
    ) -> Result<Vec<Opened>, ReloadError> {
        let mut added = Vec::new();
        for (&addr, &backlog) in wanted {
            if self.listening.contains_key(&addr) {
                continue;
            }
            let sockets = listeners::bind(addr, backlog, self.workers.len()).map_err(|e| {
                let i = config.listeners.iter().position(|l| l.address == addr);
                let key = format!("listener[{}].address", i.unwrap_or_default());
                refused_bind(config, key, addr, &e)
            })?;
            // One socket per worker, as at start.
            added.push((
                addr,
                sockets.into_iter().map(|s| vec![s]).collect::<Vec<_>>(),
            ));
        }
        let mut opened = Vec::with_capacity(added.len());
        for (addr, sockets) in added {
            let Some(l) = config.listeners.iter().find(|l| l.address == addr) else {
                continue;
            };
            match first_steps(&mut self.tls, l) {
                Ok(steps) => opened.push((addr, steps, sockets)),
                Err(source) => {
                    self.close_opened(&opened);
                    return Err(ServerError::Tls { addr, source }.into());
                }
            }
        }
        Ok(opened)
    }

    /// The new site, after joining a changed fleet and giving the
    /// certificate manager its names; on failure both get the running
    /// config back and the new listeners' TLS is closed.
    fn build_site(&mut self, config: &Config, opened: &[Opened]) -> Result<Site, ReloadError> {
        let site = self
            .fleet
            .apply(config)
            .and_then(|()| acme::apply(config))
            .and_then(|()| Site::build_with(config, &self.registry).map_err(ServerError::Site));
        site.map_err(|e| {
            self.close_opened(opened);
            if let Err(back) = self.fleet.apply(&self.config) {
                tracing::error!(error = %back, "reload refused, and the previous [fleet] cannot be joined again");
            }
            if let Err(back) = acme::apply(&self.config) {
                tracing::error!(error = %back, "reload refused, and the previous [acme] cannot be applied again");
            }
            e.into()
        })
    }

    /// Forgets the TLS of listeners opened by a reload that is refused.
    fn close_opened(&mut self, opened: &[Opened]) {
        for (addr, _, _) in opened {
            self.tls.close(*addr);
        }
    }

    /// On reload, open listeners take their new TLS and PROXY protocol
    /// settings for connections accepted from now on. A listener whose TLS
    /// cannot start keeps its old steps.
    pub(crate) fn update_first_steps(&mut self, config: &Config) {
        for l in &config.listeners {
            let Some(ctx) = self.listening.get(&l.address).cloned() else {
                continue;
            };
            match first_steps(&mut self.tls, l) {
                Ok(steps) => ctx.steps.store(Arc::new(steps)),
                Err(e) => tracing::error!(
                    listener = %l.address,
                    error = %e,
                    "TLS cannot start; the listener keeps its previous settings"
                ),
            }
        }
    }

    /// Gives the admin listener its new rules, and moves, starts or stops
    /// it when `[admin] address` changed (`socket` is the new address,
    /// bound while the reload was checked).
    pub(crate) fn reload_admin(
        &mut self,
        config: &Config,
        access: Option<levee_admin::Access>,
        socket: Option<std::net::TcpListener>,
    ) {
        match (access, &self.admin_state) {
            (None, _) => {
                self.admin = None;
                self.admin_dup = None;
                self.admin_state = None;
                return;
            }
            (Some(access), Some(state)) => state.update(access),
            (Some(access), None) => {
                self.admin_state = Some(levee_admin::Admin::new(
                    self.shared.clone(),
                    access,
                    Some(self.reloader.clone()),
                ));
            }
        }
        // The dashboard's config view shows what now runs.
        if let Some(state) = &self.admin_state {
            state.dash().set_config(Arc::new(config.clone()));
        }
        let (Some(socket), Some(admin)) = (socket, &config.admin) else {
            return;
        };
        self.serve_admin(admin.address, socket);
    }
}
