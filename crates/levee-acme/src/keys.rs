//! Keys, certificate signing requests, the TLS-ALPN-01 challenge
//! certificate, and reading an issued certificate (validity, names,
//! issuer, the ARI identifier). No I/O.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use levee_tls::CertifiedKey;
use rcgen::{CertificateParams, CustomExtension, DistinguishedName, KeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use x509_parser::extensions::{GeneralName, ParsedExtension};

use crate::error::AcmeError;

/// What a certificate's key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    EcdsaP256,
    Rsa(usize),
}

fn crypto(what: &str, e: impl std::fmt::Display) -> AcmeError {
    AcmeError::Crypto(format!("{what}: {e}"))
}

/// A new private key of `kind`.
pub fn generate(kind: KeyType) -> Result<KeyPair, AcmeError> {
    match kind {
        KeyType::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| crypto("generating a key", e)),
        KeyType::Rsa(bits) => {
            use rsa::pkcs8::EncodePrivateKey;
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits)
                .map_err(|e| crypto("generating an RSA key", e))?;
            let der = key
                .to_pkcs8_der()
                .map_err(|e| crypto("encoding an RSA key", e))?;
            let pkcs8 = PrivatePkcs8KeyDer::from(der.as_bytes().to_vec());
            KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256)
                .map_err(|e| crypto("loading an RSA key", e))
        }
    }
}

/// A CSR (DER) for `names`, signed by `key`. The subject is empty: the
/// names go in the subjectAltName, which is what the CA reads.
pub fn csr(key: &KeyPair, names: &[String]) -> Result<Vec<u8>, AcmeError> {
    let mut params = CertificateParams::new(names.to_vec()).map_err(|e| crypto("CSR", e))?;
    params.distinguished_name = DistinguishedName::new();
    let csr = params
        .serialize_request(key)
        .map_err(|e| crypto("CSR", e))?;
    Ok(csr.der().to_vec())
}

/// The self-signed certificate that answers TLS-ALPN-01 for `name`
/// (RFC 8737 §3): `name` its only SAN, and the SHA-256 of the key
/// authorization in a critical acmeIdentifier extension.
pub fn tls_alpn01_cert(name: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>, AcmeError> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| crypto("challenge key", e))?;
    let mut params =
        CertificateParams::new(vec![name.to_owned()]).map_err(|e| crypto("challenge", e))?;
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(digest)];
    let cert = params
        .self_signed(&key)
        .map_err(|e| crypto("challenge", e))?;
    // Built directly, not through levee_tls::certified_pem: its key check
    // parses the certificate with webpki, which refuses the critical
    // acmeIdentifier extension it does not know (as it should for a
    // certificate served to anyone else).
    let signing = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(rustls_pki_types::PrivateKeyDer::Pkcs8(
            key.serialize_der().into(),
        ))
        .map_err(|e| crypto("challenge key", e))?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signing,
    )))
}

/// What levee shows and schedules by, read from a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// The issuer's common name, else its organisation, else the whole DN.
    pub issuer: String,
    /// DNS names in the subjectAltName.
    pub names: Vec<String>,
    /// Serial number, lower-case hex.
    pub serial: String,
    /// The ARI certificate identifier (RFC 9773 §4.1), when the
    /// certificate has an authority key identifier.
    pub ari_id: Option<String>,
}

impl CertInfo {
    pub fn lifetime(&self) -> Duration {
        self.not_after
            .duration_since(self.not_before)
            .unwrap_or_default()
    }
}

fn time(t: x509_parser::time::ASN1Time) -> SystemTime {
    let secs = t.timestamp();
    match u64::try_from(secs) {
        Ok(s) => UNIX_EPOCH + Duration::from_secs(s),
        Err(_) => UNIX_EPOCH,
    }
}

/// Reads the leaf (the first certificate) of a PEM chain.
pub fn info_pem(chain: &[u8]) -> Result<CertInfo, AcmeError> {
    let leaf = CertificateDer::pem_slice_iter(chain)
        .next()
        .ok_or_else(|| crypto("certificate", "no certificate in the chain"))?
        .map_err(|e| crypto("certificate", e))?;
    info(&leaf)
}

pub fn info(der: &[u8]) -> Result<CertInfo, AcmeError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| crypto("certificate", e))?;
    let validity = cert.validity();
    let issuer = cert.issuer();
    let issuer = issuer
        .iter_common_name()
        .next()
        .or_else(|| issuer.iter_organization().next())
        .and_then(|a| a.as_str().ok())
        .map_or_else(|| issuer.to_string(), str::to_owned);
    let mut names = Vec::new();
    let mut aki = None;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                for n in &san.general_names {
                    if let GeneralName::DNSName(d) = n {
                        names.push(d.to_ascii_lowercase());
                    }
                }
            }
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                aki = a.key_identifier.as_ref().map(|k| k.0.to_vec());
            }
            _ => {}
        }
    }
    let serial_der = cert.tbs_certificate.raw_serial();
    let ari_id = aki.map(|aki| {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}", b64.encode(aki), b64.encode(serial_der))
    });
    Ok(CertInfo {
        not_before: time(validity.not_before),
        not_after: time(validity.not_after),
        issuer,
        names,
        serial: serial_der.iter().map(|b| format!("{b:02x}")).collect(),
        ari_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csr_names_what_was_asked() {
        use x509_parser::prelude::FromDer;
        let key = generate(KeyType::EcdsaP256).unwrap();
        let der = csr(&key, &["a.test".into()]).unwrap();
        let (_, req) =
            x509_parser::certification_request::X509CertificationRequest::from_der(&der).unwrap();
        let text = format!(
            "{:?}",
            req.requested_extensions().map(|e| e.collect::<Vec<_>>())
        );
        assert!(text.contains("a.test"), "{text}");
    }

    #[test]
    fn reads_validity_names_and_issuer() {
        let key = generate(KeyType::EcdsaP256).unwrap();
        let mut params = CertificateParams::new(vec!["A.test".into(), "b.test".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "levee test");
        let cert = params.self_signed(&key).unwrap();
        let i = info_pem(cert.pem().as_bytes()).unwrap();
        assert_eq!(i.names, ["a.test", "b.test"]);
        assert_eq!(i.issuer, "levee test");
        assert!(i.not_after > i.not_before);
    }

    #[test]
    fn challenge_certificate_carries_the_acme_identifier() {
        let digest = [7u8; 32];
        let ck = tls_alpn01_cert("a.test", &digest).unwrap();
        let der = ck.cert[0].as_ref();
        let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
        let ext = cert
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .expect("acmeIdentifier");
        assert!(ext.critical);
        // An OCTET STRING of the 32-byte digest.
        assert_eq!(&ext.value[2..], &digest);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(
            info_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err()
        );
        assert!(info_pem(b"").is_err());
        assert!(info(&[0x30, 0x82, 0xff]).is_err());
    }
}
