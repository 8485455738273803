//! Probes of the members' listeners: every `probe_interval`, a TCP connect
//! to each port a fleet record checks (its `probe_port`, or every listener
//! the member reports) on each of the member's public addresses, bounded
//! by `probe_timeout`. `probe_fall` failures in a row take an address out,
//! `probe_rise` passes bring it back (the upstreams' rise/fall counter);
//! the first result decides at once, so a levee that starts does not wait
//! a full rise to answer.
//!
//! Each DNS-serving levee probes for itself; levees that reach the members
//! alike hold the same sets.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use levee_config::MemberProbe;
use levee_fleet::Member;
use levee_upstream::health::Counter;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::Shared;

/// What was probed: a member, one of its addresses, a port.
pub type Target = (String, IpAddr, u16);

/// The verdict of every target probed.
#[derive(Debug, Default)]
pub struct Health {
    counters: HashMap<Target, Counter>,
}

impl Health {
    /// The verdict for `target`: `None` before its first probe.
    pub fn up(&self, target: &(String, IpAddr, u16)) -> Option<bool> {
        self.counters.get(target).map(Counter::up)
    }

    /// Records one result; returns whether the verdict changed.
    pub fn record(&mut self, target: Target, passed: bool, rules: &MemberProbe) -> bool {
        match self.counters.get_mut(&target) {
            Some(c) => c.record(passed).is_some(),
            None => {
                self.counters
                    .insert(target, Counter::new(rules.rise, rules.fall, passed));
                true
            }
        }
    }

    /// Forgets targets no longer probed (a member gone, a port closed).
    pub fn keep(&mut self, wanted: &HashSet<Target>) {
        self.counters.retain(|t, _| wanted.contains(t));
    }
}

/// The ports of the listeners a member reports (`NAME ADDRESS` or
/// `ADDRESS`).
pub fn listener_ports(m: &Member) -> Vec<u16> {
    let mut ports: Vec<u16> = m
        .record
        .listeners
        .iter()
        .filter_map(|l| l.rsplit(' ').next()?.parse::<SocketAddr>().ok())
        .map(|a| a.port())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// The ports fleet records with `probe_port`s ask for, else every listener's.
pub fn ports(m: &Member, probe_port: Option<u16>) -> Vec<u16> {
    match probe_port {
        Some(p) => vec![p],
        None => listener_ports(m),
    }
}

/// One round: probes every target of every fresh member, records the
/// results; true when a verdict changed.
pub async fn round(shared: &Arc<Shared>) -> bool {
    let Some(fleet) = levee_fleet::current() else {
        return false;
    };
    let rules = shared.config.load().probe;
    let zones = shared.zones.load();
    let probe_ports: Vec<Option<u16>> = zones
        .iter()
        .flat_map(|z| z.fleet.iter().map(|f| f.config.probe_port))
        .collect();
    if probe_ports.is_empty() {
        return false;
    }
    let mut wanted = HashSet::new();
    for m in fleet.snapshot().members.iter().filter(|m| m.fresh) {
        for &ip in &m.record.public {
            for p in &probe_ports {
                for port in ports(m, *p) {
                    wanted.insert((m.record.instance.clone(), ip, port));
                }
            }
        }
    }
    let mut tasks = JoinSet::new();
    for target in wanted.iter().cloned() {
        let timeout = rules.timeout;
        tasks.spawn(async move {
            let addr = SocketAddr::new(target.1, target.2);
            let passed = matches!(
                tokio::time::timeout(timeout, TcpStream::connect(addr)).await,
                Ok(Ok(_))
            );
            (target, passed)
        });
    }
    let mut results = Vec::new();
    while let Some(Ok(r)) = tasks.join_next().await {
        results.push(r);
    }
    let mut health = crate::lock(&shared.health);
    let mut changed = false;
    for (target, passed) in results {
        if health.record(target.clone(), passed, &rules) {
            tracing::info!(member = %target.0, address = %target.1, port = target.2, passed, "dns: member probe verdict");
            changed = true;
        }
    }
    health.keep(&wanted);
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_result_decides_then_rise_and_fall_count() {
        let rules = MemberProbe {
            rise: 2,
            fall: 2,
            ..MemberProbe::default()
        };
        let mut h = Health::default();
        let t: Target = ("a".into(), "192.0.2.1".parse().expect("ip"), 80);
        assert_eq!(h.up(&t), None);
        assert!(h.record(t.clone(), true, &rules));
        assert_eq!(h.up(&t), Some(true));
        assert!(!h.record(t.clone(), false, &rules));
        assert!(h.record(t.clone(), false, &rules));
        assert_eq!(h.up(&t), Some(false));
        assert!(!h.record(t.clone(), true, &rules));
        assert!(h.record(t.clone(), true, &rules));
        h.keep(&HashSet::new());
        assert_eq!(h.up(&t), None);
    }
}
