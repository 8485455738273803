//! Upstream server actions for the whole fleet (`"fleet": true` on
//! `POST /upstreams/NAME/servers/SERVER/ACTION`, `levee ctl drain ...
//! --fleet`; docs/fleet.md, "Fleet-wide server actions"): the action goes
//! out on the bus ([`crate::bus::Message::ServerAction`]); each member that
//! has the upstream and server applies it as its own API would, and writes
//! its answer into the hash `{NAME}:act:ID`, one field per member, read by
//! the member whose API took the action (as push reports are:
//! [`crate::push`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::FleetError;
use crate::link::Link;

/// One member's answer to an action.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Outcome {
    /// The HTTP status the member's own API gave the action (200 applied,
    /// 404 no such upstream or server, 400 a bad body).
    pub status: u16,
    /// Its JSON answer: the servers as they are now, or the error.
    pub answer: serde_json::Value,
}

pub fn key(fleet: &str, id: &str) -> String {
    format!("{{{fleet}}}:act:{id}")
}

/// Writes this member's outcome of action `id`.
pub async fn report(
    link: &Link,
    fleet: &str,
    id: &str,
    instance: &str,
    outcome: &Outcome,
) -> Result<(), FleetError> {
    crate::push::put(link, key(fleet, id), instance, outcome).await
}

/// Every outcome of action `id` so far, by member.
pub async fn reports(
    link: &Link,
    fleet: &str,
    id: &str,
) -> Result<BTreeMap<String, Outcome>, FleetError> {
    crate::push::get(link, key(fleet, id)).await
}
