//! The fleet's bus: typed messages on the Redis channel `{NAME}:bus`, for
//! what every member must hear within a second: user moves, cache purges,
//! config pushes. A message is JSON: who sent it, when, and the message
//! itself, tagged by `type`. The process acts on each as it arrives (a
//! [`Handler`], on the fleet thread), so a control thread busy with a
//! reload does not delay a user move.
//!
//! Every message is signed ([`Signer`]: HMAC-SHA256 keyed by the fleet's
//! name and levee's Redis password) and a member acts only on one whose
//! signature holds, so another client of the same Redis (an application
//! with its own ACL user allowed to publish) can neither push a config nor
//! close sessions or purge caches. Without a Redis password the key
//! follows from the fleet's name, and Redis' ACL is the only boundary
//! (docs/fleet.md, "Who may push").
//!
//! The subscriber has its own connection (a subscribed Redis connection
//! can do nothing else) and subscribes again whenever it is lost or Redis
//! was marked down meanwhile. Pub/sub delivers at most once: a message sent
//! while a member is cut off is not replayed to it, so what must not be
//! lost also lives in a key the member reads when it is back.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::FleetError;
use crate::link::{Link, RETRY};

/// What members tell each other.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Does nothing but show in every member's log (`levee ctl fleet ping`).
    Ping { note: String },
    /// `instance` leaves the fleet's DNS answers (`drained`) or comes back
    /// (`levee ctl fleet drain` / `undrain`, docs/dns.md).
    Drain { instance: String, drained: bool },
    /// Close `user`'s logged-in mail sessions, with the grace rules of a
    /// local move (`POST /mail/users/NAME/close` on any member).
    CloseUser { user: String },
    /// Remove cached responses (`POST /cache/purge` on any member).
    Purge { by: PurgeBy, value: String },
    /// A config to apply as a reload (`levee ctl fleet push`): each member
    /// named in `targets` (every member when absent) checks it on its own
    /// machine, applies it or keeps its own, and reports under `id`
    /// ([`crate::push`]).
    ConfigPush {
        id: String,
        /// The pusher's [`crate::config_hash`] of `config`.
        hash: String,
        config: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        targets: Option<Vec<String>>,
    },
    /// A runtime ban or allow entry changed: read the lists again
    /// ([`crate::bans`]).
    Bans {},
    /// An action on an upstream's server for every member that has it
    /// (`"fleet": true` on the server action API); each reports under `id`
    /// ([`crate::actions`]).
    ServerAction {
        id: String,
        upstream: String,
        server: String,
        action: String,
        /// The body the action takes (`{"weight": N}`), as JSON.
        #[serde(default)]
        body: String,
    },
    /// A runtime edit of mirror `name` in mirror set `set`, stored in the
    /// set's shared table as `version` ([`crate::table`]); `entry` `None`:
    /// the edit was reset. Members apply it unless they hold a later one.
    MirrorEdit {
        set: String,
        name: String,
        version: u64,
        entry: Option<serde_json::Value>,
    },
}

/// What a purge matches (the admin API's `url`, `prefix` or `tag`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PurgeBy {
    Url,
    Prefix,
    Tag,
}

impl Message {
    /// The message's type as on the wire, for log lines.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Ping { .. } => "ping",
            Message::Drain { .. } => "drain",
            Message::CloseUser { .. } => "close_user",
            Message::Purge { .. } => "purge",
            Message::ConfigPush { .. } => "config_push",
            Message::Bans {} => "bans",
            Message::ServerAction { .. } => "server_action",
            Message::MirrorEdit { .. } => "mirror_edit",
        }
    }
}

/// What the process does with a message as it arrives (on the fleet
/// thread, so it must not block: a user move or a purge, or handing a push
/// to the control thread).
pub type Handler = Arc<dyn Fn(&Envelope) + Send + Sync>;

/// A message with its sender.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Envelope {
    pub from: String,
    /// Milliseconds since the Unix epoch on the sender's clock.
    pub sent_ms: u64,
    #[serde(flatten)]
    pub message: Message,
}

pub fn channel(fleet: &str) -> String {
    format!("{{{fleet}}}:bus")
}

/// Signs and checks the bus's messages with the fleet's shared secret.
#[derive(Clone)]
pub struct Signer(ring::hmac::Key);

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(<redacted>)")
    }
}

impl Signer {
    pub fn new(fleet: &str, secret: &str) -> Signer {
        let seed = format!("levee fleet bus\0{fleet}\0{secret}");
        let key = ring::digest::digest(&ring::digest::SHA256, seed.as_bytes());
        Signer(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_ref()))
    }

    /// The signature (hex) of `body`; also signs shared tables' rows.
    pub fn sign(&self, body: &[u8]) -> String {
        let tag = ring::hmac::sign(&self.0, body);
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `signature` (hex) is this fleet's for `body`, in constant
    /// time.
    pub fn verify(&self, body: &[u8], signature: &[u8]) -> bool {
        let tag: Option<Vec<u8>> = signature
            .chunks(2)
            .map(|h| {
                let h = std::str::from_utf8(h).ok().filter(|h| h.len() == 2)?;
                u8::from_str_radix(h, 16).ok()
            })
            .collect();
        tag.is_some_and(|t| ring::hmac::verify(&self.0, body, &t).is_ok())
    }
}

/// Why a payload on the channel is not acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unread {
    /// Not signed with the fleet's key: not from a member.
    Unsigned,
    /// Signed, but of a type or shape levee does not know (a newer
    /// member's), or garbage.
    Unknown,
}

/// Reads a payload: `SIGNATURE JSON`, the signature covering the JSON's
/// bytes as sent.
pub fn decode(payload: &[u8], signer: &Signer) -> Result<Envelope, Unread> {
    let at = payload
        .iter()
        .position(|&b| b == b' ')
        .ok_or(Unread::Unsigned)?;
    let (signature, body) = (&payload[..at], &payload[at + 1..]);
    if !signer.verify(body, signature) {
        return Err(Unread::Unsigned);
    }
    serde_json::from_slice(body).map_err(|_| Unread::Unknown)
}

pub fn encode(from: &str, message: Message, signer: &Signer) -> String {
    let sent_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let e = Envelope {
        from: from.to_owned(),
        sent_ms,
        message,
    };
    let body = serde_json::to_string(&e).unwrap_or_default();
    format!("{} {body}", signer.sign(body.as_bytes()))
}

/// Publishes `message`; returns how many subscribers Redis handed it to.
pub async fn publish(
    link: &Link,
    fleet: &str,
    from: &str,
    message: Message,
    signer: &Signer,
) -> Result<u64, FleetError> {
    let text = encode(from, message, signer);
    let channel = channel(fleet);
    let patient = link.timeout().max(Duration::from_secs(1));
    link.run_within(patient, |mut conn| async move {
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(text)
            .query_async(&mut conn)
            .await
    })
    .await
}

/// Receives the bus until the task is dropped: each message goes to
/// `handle`, then to `out` (receivers that lag lose the oldest); a ping is
/// logged.
pub(crate) async fn subscribe(
    link: Arc<Link>,
    fleet: String,
    signer: Signer,
    out: broadcast::Sender<Envelope>,
    handle: Handler,
) {
    let mut unsigned = 0u64;
    let channel = channel(&fleet);
    let mut seed = 0usize;
    loop {
        seed += 1;
        let downs = link.health.went_down.load(Ordering::Relaxed);
        let pubsub = async {
            let client = link.subscriber_client(seed).await?;
            let mut ps = tokio::time::timeout(Duration::from_secs(1), client.get_async_pubsub())
                .await
                .map_err(|_| FleetError::Timeout)??;
            tokio::time::timeout(Duration::from_secs(1), ps.subscribe(&channel))
                .await
                .map_err(|_| FleetError::Timeout)??;
            Ok::<_, FleetError>(ps)
        }
        .await;
        let mut ps = match pubsub {
            Ok(ps) => ps,
            Err(e) => {
                tracing::debug!(error = %e, "fleet bus: cannot subscribe yet");
                tokio::time::sleep(RETRY * 5).await;
                continue;
            }
        };
        tracing::debug!(channel, "fleet bus: subscribed");
        // What was announced while this member was not subscribed (after
        // an outage the link may be back before the bus is) is not
        // replayed: the ban lists are read again, not at the next resync.
        crate::bans::announced();
        let mut stream = ps.on_message();
        let mut check = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                msg = stream.next() => {
                    let Some(msg) = msg else { break };
                    match decode(msg.get_payload_bytes(), &signer) {
                        Ok(e) => {
                            match &e.message {
                                Message::Ping { note } => {
                                    tracing::info!(from = %e.from, note = %note, "fleet bus: ping");
                                }
                                Message::Drain { instance, drained } => {
                                    tracing::info!(from = %e.from, instance = %instance, drained, "fleet bus: drain");
                                }
                                _ => {}
                            }
                            handle(&e);
                            let _ = out.send(e);
                        }
                        Err(Unread::Unsigned) => {
                            // Logged at 1, 2, 4, 8, ...: a flood of them
                            // does not flood the log.
                            unsigned += 1;
                            if unsigned.is_power_of_two() {
                                tracing::warn!(count = unsigned, "fleet bus: a message without the fleet's signature was ignored");
                            }
                        }
                        Err(Unread::Unknown) => tracing::debug!("fleet bus: skipped a message levee does not know"),
                    }
                }
                _ = check.tick() => {
                    // A hung or restarted server may leave this socket
                    // silent rather than closed: start again after any
                    // outage the main connection saw.
                    if link.health.went_down.load(Ordering::Relaxed) != downs {
                        break;
                    }
                }
            }
        }
        tracing::debug!("fleet bus: subscription lost; subscribing again");
        tokio::time::sleep(RETRY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_tagged_json_after_their_signature() {
        let signer = Signer::new("shop", "s3cret");
        let text = encode("web-1", Message::Ping { note: "hi".into() }, &signer);
        let (signature, body) = text.split_once(' ').expect("signed");
        assert_eq!(signature.len(), 64);
        let v: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(v["type"], "ping");
        assert_eq!(v["from"], "web-1");
        assert_eq!(v["note"], "hi");
        let e = decode(text.as_bytes(), &signer).expect("decodes");
        assert_eq!(e.message, Message::Ping { note: "hi".into() });
        assert_eq!(channel("shop"), "{shop}:bus");
        let push = Message::ConfigPush {
            id: "1".into(),
            hash: "ab".into(),
            config: "x = 1\n".into(),
            targets: None,
        };
        let text = encode("web-1", push.clone(), &signer);
        assert!(!text.contains("targets"), "{text}");
        assert_eq!(
            decode(text.as_bytes(), &signer).expect("decodes").message,
            push
        );
        let purge = encode(
            "web-2",
            Message::Purge {
                by: PurgeBy::Prefix,
                value: "http://a/b".into(),
            },
            &signer,
        );
        let v: serde_json::Value =
            serde_json::from_str(purge.split_once(' ').expect("signed").1).expect("JSON");
        assert_eq!(
            (v["type"].as_str(), v["by"].as_str()),
            (Some("purge"), Some("prefix"))
        );
    }

    #[test]
    fn only_the_fleets_own_signature_holds() {
        let signer = Signer::new("shop", "s3cret");
        let text = encode(
            "web-1",
            Message::CloseUser {
                user: "alice".into(),
            },
            &signer,
        );
        let (signature, body) = text.split_once(' ').expect("signed");
        // Another body under the signature, another secret or fleet, no
        // signature, a malformed one: not from a member.
        let other = body.replace("alice", "bob");
        for (payload, key) in [
            (format!("{signature} {other}"), &signer),
            (text.clone(), &Signer::new("shop", "guess")),
            (text.clone(), &Signer::new("shoe", "s3cret")),
            (body.to_owned(), &signer),
            (format!("zz {body}"), &signer),
            (format!("{}abc {body}", &signature[..61]), &signer),
        ] {
            assert_eq!(
                decode(payload.as_bytes(), key),
                Err(Unread::Unsigned),
                "{payload}"
            );
        }
        // Signed, but unknown to this levee: skipped as such.
        let unknown = r#"{"type":"shiny","from":"x","sent_ms":1}"#;
        let fields = r#"{"type":"purge","from":"x","sent_ms":1}"#;
        for body in [unknown, fields, "garbage"] {
            let payload = format!("{} {body}", signer.sign(body.as_bytes()));
            assert_eq!(decode(payload.as_bytes(), &signer), Err(Unread::Unknown));
        }
        assert!(format!("{signer:?}").contains("redacted"));
    }
}
