//! DNS-01 (RFC 8555 §8.4): the TXT record `_acme-challenge.NAME` that a CA
//! looks up, written where the names' DNS is served.
//!
//! [`Dns01`] is the seam. Today one implementation: [`Rfc2136`], a dynamic
//! update (RFC 2136) sent over TCP to the zone's primary server, signed
//! with TSIG HMAC-SHA256 (RFC 8945) when a key is configured. levee's own
//! authoritative DNS, when it lands, answers DNS-01 by implementing
//! [`Dns01`] over its zones and calling [`set_local`]; `[acme.dns]` is then
//! not needed for the names it serves.
//!
//! The message is built here byte by byte ([`update_message`], no I/O,
//! tested below); the answer is checked for its id and RCODE.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::AcmeError;
use crate::settings::DnsSettings;

type Done<'a> = Pin<Box<dyn Future<Output = Result<(), AcmeError>> + Send + 'a>>;

/// Writes and removes DNS-01 records.
pub trait Dns01: Send + Sync {
    /// Adds the TXT record `record` (a full name) with `value`.
    fn present<'a>(&'a self, record: &'a str, value: &'a str) -> Done<'a>;
    /// Removes that record (that value only).
    fn remove<'a>(&'a self, record: &'a str, value: &'a str) -> Done<'a>;
}

static LOCAL: RwLock<Option<Arc<dyn Dns01>>> = RwLock::new(None);

/// Registers levee's own DNS as where DNS-01 records go when `[acme.dns]`
/// is not configured (for the built-in authoritative DNS).
pub fn set_local(dns: Option<Arc<dyn Dns01>>) {
    *LOCAL.write().unwrap_or_else(|e| e.into_inner()) = dns;
}

pub(crate) fn local() -> Option<Arc<dyn Dns01>> {
    LOCAL.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// How long one update may take, connect to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// TSIG's allowed clock difference (RFC 8945 §5.2.3 recommends 300 s).
const FUDGE: u16 = 300;

const TYPE_SOA: u16 = 6;
const TYPE_TXT: u16 = 16;
const TYPE_TSIG: u16 = 250;
const CLASS_IN: u16 = 1;
const CLASS_NONE: u16 = 254;
const CLASS_ANY: u16 = 255;
const OPCODE_UPDATE: u16 = 5 << 11;

#[derive(Debug)]
pub struct Rfc2136 {
    settings: DnsSettings,
}

impl Rfc2136 {
    pub fn new(settings: DnsSettings) -> Rfc2136 {
        Rfc2136 { settings }
    }

    fn zone_of(&self, record: &str) -> String {
        match &self.settings.zone {
            Some(z) => z.clone(),
            None => record
                .strip_prefix("_acme-challenge.")
                .unwrap_or(record)
                .to_owned(),
        }
    }

    async fn send(&self, record: &str, value: &str, add: bool) -> Result<(), AcmeError> {
        let zone = self.zone_of(record);
        let id = u16::from_be_bytes(random::<2>());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let change = Change {
            record,
            value,
            ttl: self.settings.ttl,
            add,
        };
        let msg = update_message(id, &zone, &change, self.settings.tsig.as_ref(), now)
            .ok_or_else(|| AcmeError::Dns(format!("`{record}` is not a valid DNS name")))?;
        let server = self.settings.server;
        let work = async {
            let mut tcp = TcpStream::connect(server).await?;
            let len = u16::try_from(msg.len()).map_err(std::io::Error::other)?;
            tcp.write_all(&len.to_be_bytes()).await?;
            tcp.write_all(&msg).await?;
            let mut len = [0u8; 2];
            tcp.read_exact(&mut len).await?;
            let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
            tcp.read_exact(&mut answer).await?;
            Ok::<_, std::io::Error>(answer)
        };
        let answer = match tokio::time::timeout(TIMEOUT, work).await {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => return Err(AcmeError::Dns(format!("{server}: {e}"))),
            Err(_) => return Err(AcmeError::Dns(format!("{server}: no answer in time"))),
        };
        check_answer(id, &answer).map_err(|e| AcmeError::Dns(format!("{server}: {e}")))
    }
}

impl Dns01 for Rfc2136 {
    fn present<'a>(&'a self, record: &'a str, value: &'a str) -> Done<'a> {
        Box::pin(self.send(record, value, true))
    }

    fn remove<'a>(&'a self, record: &'a str, value: &'a str) -> Done<'a> {
        Box::pin(self.send(record, value, false))
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    b
}

/// One record change.
pub struct Change<'a> {
    pub record: &'a str,
    pub value: &'a str,
    pub ttl: u32,
    pub add: bool,
}

/// A name in wire form, lower case; `None` if a label is empty or too long.
fn wire_name(out: &mut Vec<u8>, name: &str) -> Option<()> {
    let name = name.trim_end_matches('.');
    if name.len() > 253 {
        return None;
    }
    for label in name.split('.') {
        let len = u8::try_from(label.len())
            .ok()
            .filter(|l| (1..=63).contains(l))?;
        out.push(len);
        out.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
    }
    out.push(0);
    Some(())
}

/// The UPDATE message for `change` in `zone`, TSIG-signed with `tsig`
/// (key name, HMAC-SHA256 secret) at `now` (Unix seconds).
pub fn update_message(
    id: u16,
    zone: &str,
    change: &Change<'_>,
    tsig: Option<&(String, Vec<u8>)>,
    now: u64,
) -> Option<Vec<u8>> {
    let mut m = Vec::with_capacity(256);
    m.extend(id.to_be_bytes());
    m.extend(OPCODE_UPDATE.to_be_bytes());
    m.extend([0, 1, 0, 0, 0, 1, 0, 0]); // ZOCOUNT 1, PRCOUNT 0, UPCOUNT 1, ADCOUNT 0
    wire_name(&mut m, zone)?;
    m.extend(TYPE_SOA.to_be_bytes());
    m.extend(CLASS_IN.to_be_bytes());
    wire_name(&mut m, change.record)?;
    m.extend(TYPE_TXT.to_be_bytes());
    // Adding: class IN with a TTL; removing one record: class NONE, TTL 0
    // (RFC 2136 §2.5.4).
    let (class, ttl) = match change.add {
        true => (CLASS_IN, change.ttl),
        false => (CLASS_NONE, 0),
    };
    m.extend(class.to_be_bytes());
    m.extend(ttl.to_be_bytes());
    let txt = change.value.as_bytes();
    let txt_len = u8::try_from(txt.len()).ok()?;
    m.extend((u16::from(txt_len) + 1).to_be_bytes());
    m.push(txt_len);
    m.extend(txt);
    if let Some((key, secret)) = tsig {
        sign(&mut m, id, key, secret, now)?;
    }
    Some(m)
}

/// Appends a TSIG record (RFC 8945 §4) to the finished message `m`.
fn sign(m: &mut Vec<u8>, id: u16, key: &str, secret: &[u8], now: u64) -> Option<()> {
    let mut key_name = Vec::new();
    wire_name(&mut key_name, key)?;
    let mut alg = Vec::new();
    wire_name(&mut alg, "hmac-sha256")?;
    let time = &now.to_be_bytes()[2..];
    // The MAC covers the message, then the TSIG variables (§4.3.3).
    let mut vars = Vec::new();
    vars.extend(&key_name);
    vars.extend(CLASS_ANY.to_be_bytes());
    vars.extend(0u32.to_be_bytes());
    vars.extend(&alg);
    vars.extend(time);
    vars.extend(FUDGE.to_be_bytes());
    vars.extend(0u16.to_be_bytes()); // error
    vars.extend(0u16.to_be_bytes()); // other len
    let hkey = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut ctx = ring::hmac::Context::with_key(&hkey);
    ctx.update(m);
    ctx.update(&vars);
    let mac = ctx.sign();
    let mac = mac.as_ref();
    let mut rdata = Vec::new();
    rdata.extend(&alg);
    rdata.extend(time);
    rdata.extend(FUDGE.to_be_bytes());
    rdata.extend(u16::try_from(mac.len()).ok()?.to_be_bytes());
    rdata.extend(mac);
    rdata.extend(id.to_be_bytes());
    rdata.extend(0u16.to_be_bytes());
    rdata.extend(0u16.to_be_bytes());
    m.extend(&key_name);
    m.extend(TYPE_TSIG.to_be_bytes());
    m.extend(CLASS_ANY.to_be_bytes());
    m.extend(0u32.to_be_bytes());
    m.extend(u16::try_from(rdata.len()).ok()?.to_be_bytes());
    m.extend(rdata);
    // ARCOUNT (bytes 10-11) counts the TSIG record now.
    m[11] = 1;
    Some(())
}

/// The server's answer: same id, a response, RCODE NOERROR.
pub fn check_answer(id: u16, answer: &[u8]) -> Result<(), String> {
    if answer.len() < 12 {
        return Err("answer shorter than a DNS header".into());
    }
    if u16::from_be_bytes([answer[0], answer[1]]) != id {
        return Err("answer to another message".into());
    }
    if answer[2] & 0x80 == 0 {
        return Err("not a response".into());
    }
    match answer[3] & 0x0f {
        0 => Ok(()),
        rcode => Err(format!(
            "update refused: {}",
            match rcode {
                2 => "SERVFAIL".to_owned(),
                3 => "NXDOMAIN".to_owned(),
                4 => "NOTIMP".to_owned(),
                5 => "REFUSED".to_owned(),
                9 => "NOTAUTH (wrong zone or TSIG key?)".to_owned(),
                10 => "NOTZONE".to_owned(),
                _ => format!("RCODE {rcode}"),
            }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsigned_add_is_laid_out_as_rfc_2136_says() {
        let change = Change {
            record: "_acme-challenge.A.test",
            value: "xyz",
            ttl: 60,
            add: true,
        };
        let m = update_message(0x1234, "a.test", &change, None, 0).unwrap();
        let mut want = vec![0x12, 0x34, 0x28, 0x00, 0, 1, 0, 0, 0, 1, 0, 0];
        want.extend(b"\x01a\x04test\x00\x00\x06\x00\x01");
        want.extend(b"\x0f_acme-challenge\x01a\x04test\x00\x00\x10\x00\x01");
        want.extend([0, 0, 0, 60, 0, 4, 3]);
        want.extend(b"xyz");
        assert_eq!(m, want);
    }

    #[test]
    fn a_removal_uses_class_none_and_a_signed_one_counts_its_tsig() {
        let change = Change {
            record: "_acme-challenge.a.test",
            value: "xyz",
            ttl: 60,
            add: false,
        };
        let tsig = ("key.".to_owned(), b"secret".to_vec());
        let m = update_message(1, "a.test", &change, Some(&tsig), 1_700_000_000).unwrap();
        assert_eq!(m[11], 1, "ARCOUNT");
        let unsigned = update_message(1, "a.test", &change, None, 0).unwrap();
        assert_eq!(&m[12..unsigned.len()], &unsigned[12..]);
        let class_at = 12 + 12 + 24 + 2;
        assert_eq!(&unsigned[class_at..class_at + 6], &[0, 254, 0, 0, 0, 0]);
        // The MAC is the HMAC of the unsigned message and the variables.
        let tail = &m[unsigned.len()..];
        assert!(tail.starts_with(b"\x03key\x00\x00\xfa\x00\xff"));
    }

    #[test]
    fn bad_names_and_answers() {
        let change = Change {
            record: "a..test",
            value: "x",
            ttl: 1,
            add: true,
        };
        assert!(update_message(1, "test", &change, None, 0).is_none());
        assert!(check_answer(7, &[0; 5]).is_err());
        assert!(check_answer(7, &[0, 8, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert_eq!(
            check_answer(7, &[0, 7, 0xa8, 5, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err("update refused: REFUSED".into())
        );
        assert!(check_answer(7, &[0, 7, 0xa8, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_ok());
    }
}
