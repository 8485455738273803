//! The fleet's bus: typed messages on the Redis channel `{NAME}:bus`, for
//! what every member must hear within a second (user moves, bans, purges,
//! config pushes build on it). A message is JSON: who sent it, when, and
//! the message itself, tagged by `type`.
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
}

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

/// Decodes a message; `None` for anything else on the channel (a newer
/// member's message type, garbage), which is skipped.
pub fn decode(payload: &[u8]) -> Option<Envelope> {
    serde_json::from_slice(payload).ok()
}

pub fn encode(from: &str, message: Message) -> String {
    let sent_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let e = Envelope {
        from: from.to_owned(),
        sent_ms,
        message,
    };
    serde_json::to_string(&e).unwrap_or_default()
}

/// Publishes `message`; returns how many subscribers Redis handed it to.
pub async fn publish(
    link: &Link,
    fleet: &str,
    from: &str,
    message: Message,
) -> Result<u64, FleetError> {
    let text = encode(from, message);
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

/// Receives the bus until the task is dropped: each message goes to `out`
/// (receivers that lag lose the oldest), and a ping is logged.
pub(crate) async fn subscribe(link: Arc<Link>, fleet: String, out: broadcast::Sender<Envelope>) {
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
        let mut stream = ps.on_message();
        let mut check = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                msg = stream.next() => {
                    let Some(msg) = msg else { break };
                    match decode(msg.get_payload_bytes()) {
                        Some(e) => {
                            match &e.message {
                                Message::Ping { note } => {
                                    tracing::info!(from = %e.from, note = %note, "fleet bus: ping");
                                }
                                Message::Drain { instance, drained } => {
                                    tracing::info!(from = %e.from, instance = %instance, drained, "fleet bus: drain");
                                }
                            }
                            let _ = out.send(e);
                        }
                        None => tracing::debug!("fleet bus: skipped a message levee does not know"),
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
    fn messages_are_tagged_json() {
        let text = encode("web-1", Message::Ping { note: "hi".into() });
        let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(v["type"], "ping");
        assert_eq!(v["from"], "web-1");
        assert_eq!(v["note"], "hi");
        let e = decode(text.as_bytes()).expect("decodes");
        assert_eq!(e.message, Message::Ping { note: "hi".into() });
        assert_eq!(decode(br#"{"type":"purge","from":"x","sent_ms":1}"#), None);
        assert_eq!(decode(b"garbage"), None);
        assert_eq!(channel("shop"), "{shop}:bus");
    }
}
