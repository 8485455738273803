//! Just enough X.509 to tell an `auth_http` service who a verified client
//! certificate names, in nginx's words (`Auth-SSL-Subject`, `-Issuer`,
//! `-Serial`, `-Fingerprint`): the subject and issuer as RFC 2253 strings
//! (most specific name first, as OpenSSL's `XN_FLAG_RFC2253` prints them),
//! the serial number in upper-case hex, and the SHA-1 of the DER in
//! lower-case hex. The certificate has already been verified by rustls; this
//! reads it, does no I/O, and gives up (`None`) on anything it cannot read.

use levee_tls::der::element;

/// What is read from a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
/// `[0] EXPLICIT Version` in a TBSCertificate.
const VERSION: u8 = 0xa0;

/// The contents of an element that must have `tag`, and what follows.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, contents, rest) = element(input)?;
    (t == tag).then_some((contents, rest))
}

pub fn read(der: &[u8]) -> Option<Names> {
    let (certificate, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(certificate, SEQUENCE)?;
    let tbs = match element(tbs)? {
        (VERSION, _, rest) => rest,
        _ => tbs,
    };
    let (serial, rest) = expect(tbs, INTEGER)?;
    let (_signature, rest) = expect(rest, SEQUENCE)?;
    let (issuer, rest) = expect(rest, SEQUENCE)?;
    let (_validity, rest) = expect(rest, SEQUENCE)?;
    let (subject, _) = expect(rest, SEQUENCE)?;
    Some(Names {
        subject: name(subject)?,
        issuer: name(issuer)?,
        serial: serial_hex(serial),
    })
}

/// A DER INTEGER as OpenSSL's `i2a_ASN1_INTEGER` prints a positive one:
/// upper-case hex of its magnitude (without DER's leading sign byte).
fn serial_hex(contents: &[u8]) -> String {
    let magnitude = match contents {
        [0, rest @ ..] if !rest.is_empty() => rest,
        all => all,
    };
    if magnitude.is_empty() {
        return "00".to_owned();
    }
    magnitude.iter().map(|b| format!("{b:02X}")).collect()
}

/// An RDNSequence's contents in RFC 2253 form: RDNs last to first, joined
/// with `,`; the attributes of a multi-valued RDN joined with `+`.
fn name(mut rdns: &[u8]) -> Option<String> {
    let mut parts = Vec::new();
    while !rdns.is_empty() {
        let (mut set, rest) = expect(rdns, SET)?;
        rdns = rest;
        let mut attributes = Vec::new();
        while !set.is_empty() {
            let (attribute, rest) = expect(set, SEQUENCE)?;
            set = rest;
            let (oid, value) = expect(attribute, OID)?;
            let (_, value, _) = element(value)?;
            attributes.push(format!("{}={}", oid_name(oid)?, escape(value)));
        }
        parts.push(attributes.join("+"));
    }
    parts.reverse();
    Some(parts.join(","))
}

/// The short name OpenSSL prints for a naming attribute, or its dotted form.
fn oid_name(oid: &[u8]) -> Option<String> {
    let known = match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x09] => "street",
        [0x55, 0x04, 0x0a] => "O",
        [0x55, 0x04, 0x0b] => "OU",
        [0x55, 0x04, 0x05] => "serialNumber",
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "UID",
        _ => return dotted(oid),
    };
    Some(known.to_owned())
}

fn dotted(oid: &[u8]) -> Option<String> {
    let (&first, rest) = oid.split_first()?;
    let mut out = format!("{}.{}", first / 40, first % 40);
    let mut value: u64 = 0;
    for &b in rest {
        value = value.checked_mul(128)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            out.push_str(&format!(".{value}"));
            value = 0;
        }
    }
    Some(out)
}

/// RFC 2253 escaping, plus `\XX` for control and non-ASCII bytes (OpenSSL's
/// `ESC_CTRL | ESC_MSB`), so the value is one safe header line.
fn escape(value: &[u8]) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.len().saturating_sub(1);
    for (i, &b) in value.iter().enumerate() {
        let special = matches!(b, b',' | b'+' | b'"' | b'\\' | b'<' | b'>' | b';')
            || (i == 0 && matches!(b, b'#' | b' '))
            || (i == last && b == b' ');
        if !(0x20..0x7f).contains(&b) {
            out.push_str(&format!("\\{b:02X}"));
        } else {
            if special {
                out.push('\\');
            }
            out.push(char::from(b));
        }
    }
    out
}

#[cfg(test)]
mod tests;
