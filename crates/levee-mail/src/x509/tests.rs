use rcgen::{CertificateParams, DnType, KeyPair, SerialNumber};

use super::{Names, read};

fn cert(dn: &[(DnType, &str)], serial: &[u8]) -> Vec<u8> {
    let mut params = CertificateParams::new(vec!["client.test".to_owned()]).expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    for (t, v) in dn {
        params.distinguished_name.push(t.clone(), *v);
    }
    params.serial_number = Some(SerialNumber::from(serial.to_vec()));
    let key = KeyPair::generate().expect("key");
    params.self_signed(&key).expect("sign").der().to_vec()
}

#[test]
fn names_in_rfc2253_order_and_serial_in_hex() {
    let der = cert(
        &[
            (DnType::CountryName, "DE"),
            (DnType::OrganizationName, "Example, Inc."),
            (DnType::CommonName, "carol"),
        ],
        &[0x01, 0x9a, 0xff],
    );
    let want = "CN=carol,O=Example\\, Inc.,C=DE";
    assert_eq!(
        read(&der),
        Some(Names {
            subject: want.to_owned(),
            issuer: want.to_owned(),
            serial: "019AFF".to_owned(),
        })
    );
}

#[test]
fn control_bytes_are_escaped() {
    let der = cert(&[(DnType::CommonName, "a\r\nb ")], &[0x80]);
    let names = read(&der).expect("readable");
    assert_eq!(names.subject, "CN=a\\0D\\0Ab\\ ");
    assert_eq!(names.serial, "80");
}

#[test]
fn garbage_and_every_truncation_give_none_without_panicking() {
    let der = cert(&[(DnType::CommonName, "x")], &[7]);
    for n in 0..der.len() {
        assert_eq!(read(&der[..n]), None, "truncated at {n}");
    }
    assert_eq!(read(b"\x30\x84\xff\xff\xff\xff"), None);
}
