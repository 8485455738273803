//! TSIG (RFC 8945) on transfers, NOTIFY and signed queries, with
//! hickory-proto's records and MAC algorithms: a request's MAC is checked (key, MAC, time within the fudge),
//! and each message of the answer is signed, the first over the request's
//! MAC and the whole TSIG variables, the ones after it over the previous
//! message's MAC and the timers only (§5.3.1), as BIND checks them.

use hickory_proto::dnssec::rdata::tsig::{TSIG, make_tsig_record};
use hickory_proto::dnssec::tsig::TSigner;
use hickory_proto::op::Message;
use hickory_proto::serialize::binary::BinEncoder;

use crate::keys::Key;

/// Seconds a signature's time may differ from ours (BIND's default).
pub const FUDGE: u16 = 300;

/// Why a signed request was refused (answered NOTAUTH).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TsigError {
    #[error("the request is not signed")]
    Unsigned,
    #[error("signed with another key or algorithm")]
    BadKey,
    #[error("the signature does not match")]
    BadSig,
    #[error("the signature's time is outside the fudge")]
    BadTime,
}

/// Checks that `request` is signed with `key` at about `now` (Unix
/// seconds); returns its MAC, which the answer's first MAC covers.
pub fn verify(request: &Message, bytes: &[u8], key: &Key, now: u64) -> Result<Vec<u8>, TsigError> {
    if request.signature().is_empty() {
        return Err(TsigError::Unsigned);
    }
    let signer = signer(key).ok_or(TsigError::BadKey)?;
    match signer.verify_message_byte(None, bytes, true) {
        Ok((mac, range, _)) if range.contains(&now) || range.end == now => Ok(mac),
        Ok(_) => Err(TsigError::BadTime),
        Err(e) if e.to_string().contains("key") => Err(TsigError::BadKey),
        Err(_) => Err(TsigError::BadSig),
    }
}

fn signer(key: &Key) -> Option<TSigner> {
    TSigner::new(
        key.secret.clone(),
        key.algorithm.clone(),
        key.wire_name(),
        FUDGE,
    )
    .ok()
}

/// Signs the messages of one answer in turn.
pub struct Chain<'k> {
    key: &'k Key,
    /// The previous MAC: the request's, then each message's.
    mac: Vec<u8>,
    first: bool,
    now: u64,
}

impl<'k> Chain<'k> {
    /// A chain answering a request whose MAC was `request_mac` (empty for a
    /// request levee sends itself, such as NOTIFY).
    pub fn new(key: &'k Key, request_mac: Vec<u8>, now: u64) -> Chain<'k> {
        Chain {
            key,
            mac: request_mac,
            first: true,
            now,
        }
    }

    /// `message` in wire form with its TSIG record.
    pub fn sign(&mut self, mut message: Message) -> Option<Vec<u8>> {
        let pre = TSIG::new(
            self.key.algorithm.clone(),
            self.now,
            FUDGE,
            Vec::new(),
            message.id(),
            0,
            Vec::new(),
        );
        let name = self.key.wire_name();
        // The message is encoded on its own, so its compression pointers
        // are the ones sent (hickory's `message_tbs` encodes it after the
        // previous MAC, which shifts them).
        let body = message.to_vec().ok()?;
        let mut tbs = Vec::with_capacity(body.len() + self.mac.len() + 64);
        let mut e = BinEncoder::new(&mut tbs);
        if !self.mac.is_empty() {
            e.emit_u16(self.mac.len() as u16).ok()?;
            e.emit_vec(&self.mac).ok()?;
        }
        e.emit_vec(&body).ok()?;
        if self.first {
            pre.emit_tsig_for_mac(&mut e, &name).ok()?;
        } else {
            e.emit_u16((self.now >> 32) as u16).ok()?;
            e.emit_u32(self.now as u32).ok()?;
            e.emit_u16(FUDGE).ok()?;
        }
        let mac = self.key.algorithm.mac_data(&self.key.secret, &tbs).ok()?;
        self.mac = mac.clone();
        self.first = false;
        message.add_tsig(make_tsig_record(name, pre.set_mac(mac)));
        message.to_vec().ok()
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::dnssec::rdata::tsig::TsigAlgorithm;
    use hickory_proto::op::{MessageType, Query};
    use hickory_proto::rr::{Name, RecordType};

    use super::*;

    fn key(name: &str) -> Key {
        Key {
            name: name.into(),
            algorithm: TsigAlgorithm::HmacSha256,
            secret: b"0123456789abcdef0123456789abcdef".to_vec(),
        }
    }

    fn query() -> Message {
        let mut m = Message::new();
        m.set_id(7);
        m.add_query(Query::query(
            Name::from_ascii("example.org.").expect("name"),
            RecordType::AXFR,
        ));
        m
    }

    #[test]
    fn a_signed_request_verifies_and_a_forged_one_does_not() {
        let k = key("xfer");
        let bytes = Chain::new(&k, Vec::new(), 1_000_000)
            .sign(query())
            .expect("signs");
        let parsed = Message::from_vec(&bytes).expect("parses");
        let mac = verify(&parsed, &bytes, &k, 1_000_100).expect("valid");
        assert_eq!(mac.len(), 32);
        assert_eq!(
            verify(&parsed, &bytes, &k, 1_000_301),
            Err(TsigError::BadTime)
        );
        assert_eq!(
            verify(&parsed, &bytes, &key("other"), 1_000_000),
            Err(TsigError::BadKey)
        );
        let mut wrong = key("xfer");
        wrong.secret[0] ^= 1;
        assert_eq!(
            verify(&parsed, &bytes, &wrong, 1_000_000),
            Err(TsigError::BadSig)
        );
        let plain = query().to_vec().expect("encodes");
        let unsigned = Message::from_vec(&plain).expect("parses");
        assert_eq!(
            verify(&unsigned, &plain, &k, 1_000_000),
            Err(TsigError::Unsigned)
        );
    }

    #[test]
    fn an_answer_chain_verifies_message_by_message() {
        let k = key("xfer");
        let signer = signer(&k).expect("signer");
        let request_mac = vec![9u8; 32];
        let mut chain = Chain::new(&k, request_mac.clone(), 1_000_000);
        let mut previous = request_mac;
        for i in 0..3 {
            let mut m = query();
            m.set_message_type(MessageType::Response);
            // Names that compress: the MAC must cover the pointers as sent.
            for n in ["a.example.org.", "b.example.org."] {
                m.add_answer(hickory_proto::rr::Record::from_rdata(
                    Name::from_ascii(n).expect("name"),
                    60,
                    hickory_proto::rr::RData::A(std::net::Ipv4Addr::new(192, 0, 2, 1).into()),
                ));
            }
            let bytes = chain.sign(m).expect("signs");
            let (mac, _, _) = signer
                .verify_message_byte(Some(&previous), &bytes, i == 0)
                .expect("each message verifies against the one before");
            previous = mac;
        }
    }
}
