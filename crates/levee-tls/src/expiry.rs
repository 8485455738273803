//! What the dashboard and `/metrics` show about TLS: the handshakes done
//! (and failed) since start, and each loaded certificate's expiry date.
//!
//! A certificate is listed while a listener's config still holds it: the
//! entry keeps only a weak reference to the loaded key, so a reload that
//! drops a certificate drops it from the list once no connection uses it.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, Weak};

use rustls::sign::CertifiedKey;

use crate::der::element;

/// Handshakes that completed, on every TLS listener (HTTP and mail).
pub static HANDSHAKES: AtomicU64 = AtomicU64::new(0);
/// Handshakes that failed (one cut off by the listener's handshake timeout
/// is not counted: its future is dropped).
pub static HANDSHAKE_FAILURES: AtomicU64 = AtomicU64::new(0);

/// One loaded certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub path: PathBuf,
    /// The names it is chosen for (empty: the default certificate).
    pub names: Vec<String>,
    /// Its `notAfter`, seconds since the Unix epoch; `None` if unreadable.
    pub not_after: Option<i64>,
}

type Entry = (Weak<CertifiedKey>, CertInfo);

static LOADED: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

fn loaded() -> std::sync::MutexGuard<'static, Vec<Entry>> {
    LOADED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Notes a certificate as loaded (when a config is built, not per handshake;
/// by levee-acme when it takes one obtained, by the file it keeps it in).
pub fn record(key: &Arc<CertifiedKey>, path: PathBuf, names: Vec<String>) {
    let not_after = key.cert.first().and_then(|c| not_after(c.as_ref()));
    let mut list = loaded();
    list.retain(|(k, _)| k.strong_count() > 0);
    list.push((
        Arc::downgrade(key),
        CertInfo {
            path,
            names,
            not_after,
        },
    ));
}

/// The certificates in use now, by path, one entry per path and names.
pub fn certificates() -> Vec<CertInfo> {
    let mut list = loaded();
    list.retain(|(k, _)| k.strong_count() > 0);
    let mut out: Vec<CertInfo> = list.iter().map(|(_, c)| c.clone()).collect();
    out.sort_by(|a, b| (&a.path, &a.names).cmp(&(&b.path, &b.names)));
    out.dedup();
    out
}

/// A certificate's `notAfter` in seconds since the Unix epoch. Does no I/O
/// and gives up (`None`) on anything it cannot read.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (_, cert, _) = element(der)?;
    let (_, tbs, _) = element(cert)?;
    let (mut tag, mut contents, mut rest) = element(tbs)?;
    if tag == 0xa0 {
        // [0] EXPLICIT version, then the serial number.
        (tag, contents, rest) = element(rest)?;
    }
    let _serial = (tag, contents);
    let (_, _signature, rest) = element(rest)?;
    let (_, _issuer, rest) = element(rest)?;
    let (_, validity, _) = element(rest)?;
    let (_, _not_before, rest) = element(validity)?;
    let (tag, time, _) = element(rest)?;
    let text = std::str::from_utf8(time).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        // UTCTime: YY from 1950 to 2049 (RFC 5280 §4.1.2.5.1).
        0x17 => {
            let yy: i64 = text.get(..2)?.parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, text.get(2..)?)
        }
        0x18 => (text.get(..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    let field = |i: usize| -> Option<i64> { rest.get(i..i + 2)?.parse().ok() };
    let (month, day) = (field(0)?, field(2)?);
    let (h, m, s) = (field(4)?, field(6)?, field(8)?);
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_not_after_of_a_generated_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["a.test".to_owned()]).expect("params");
        params.not_after = rcgen::date_time_ymd(2031, 7, 9);
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        // 2031-07-09T00:00:00Z
        assert_eq!(not_after(cert.der()), Some(1_941_321_600));
        assert_eq!(not_after(&cert.der()[..40]), None);
        assert_eq!(not_after(b""), None);
    }

    #[test]
    fn civil_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }
}
