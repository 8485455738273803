//! NOTIFY (RFC 1996): when a zone's serial changes, each of its
//! secondaries is told at the address configured, signed with the zone's
//! TSIG key when it has one, and asked again (1 s, 2 s, 4 s, 8 s apart)
//! until it answers, so a secondary transfers the change at once instead
//! of at its next refresh.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, RecordType};
use tokio::net::UdpSocket;

use crate::metrics::COUNTERS;
use crate::tsig::Chain;
use crate::zone::Zone;

const TRIES: u32 = 5;

/// Tells every secondary of `zone` about `serial`.
pub async fn send(zone: Arc<Zone>, serial: u32) {
    let mut tasks = tokio::task::JoinSet::new();
    for s in &zone.config.secondaries {
        tasks.spawn(one(zone.clone(), serial, s.address));
    }
    while tasks.join_next().await.is_some() {}
}

async fn one(zone: Arc<Zone>, serial: u32, to: SocketAddr) {
    let bind: SocketAddr = if to.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let Ok(socket) = UdpSocket::bind(bind).await else {
        return;
    };
    let mut wait = Duration::from_secs(1);
    for _ in 0..TRIES {
        let id = (serial as u16) ^ (to.port().rotate_left(7));
        let Some(bytes) = message(&zone, serial, id) else {
            return;
        };
        if socket.send_to(&bytes, to).await.is_ok() {
            let mut buf = [0u8; 1024];
            let deadline = tokio::time::Instant::now() + wait;
            while let Ok(Ok((n, from))) =
                tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await
            {
                let answered = from == to
                    && Message::from_vec(&buf[..n])
                        .is_ok_and(|m| m.id() == id && m.message_type() == MessageType::Response);
                if answered {
                    COUNTERS.notifies_answered.fetch_add(1, Relaxed);
                    tracing::info!(zone = %zone.config.name, secondary = %to, serial, "dns: NOTIFY answered");
                    return;
                }
            }
        } else {
            tokio::time::sleep(wait).await;
        }
        wait *= 2;
    }
    COUNTERS.notifies_unanswered.fetch_add(1, Relaxed);
    tracing::warn!(zone = %zone.config.name, secondary = %to, serial, "dns: NOTIFY not answered; the secondary transfers at its next refresh");
}

/// The NOTIFY for `serial`, signed when the zone has a key.
fn message(zone: &Zone, serial: u32, id: u16) -> Option<Vec<u8>> {
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Notify)
        .set_authoritative(true);
    let mut q = Query::query(zone.apex.clone(), RecordType::SOA);
    q.set_query_class(DNSClass::IN);
    m.add_query(q);
    m.add_answer(zone.soa(serial));
    match &zone.tsig {
        Some(key) => {
            let unix = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            Chain::new(key, Vec::new(), unix).sign(m)
        }
        None => m.to_vec().ok(),
    }
}
