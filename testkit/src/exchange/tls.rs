//! TLS material for the fake Exchange: a throw-away CA, a server certificate
//! for the configured hostname and `127.0.0.1`, a second one for
//! `wrong.example` (the [`Fault::BadTlsCertificate`](super::Fault) fault), a
//! client-certificate verifier that accepts any certificate (the connector
//! role decides by name, not by chain), and a small DER walk that pulls the
//! subject CN and SAN DNS names out of a certificate.

use std::fmt;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};

/// The name on the certificate presented for [`Fault::BadTlsCertificate`](super::Fault).
pub const WRONG_NAME: &str = "wrong.example";

/// Server-side TLS configurations, built once per fake.
pub struct TlsMaterial {
    /// PEM of the CA that signed both server certificates.
    pub ca_pem: String,
    /// Certificate for the hostname and 127.0.0.1.
    pub good: Arc<ServerConfig>,
    /// Certificate for [`WRONG_NAME`], same CA.
    pub wrong: Arc<ServerConfig>,
}

/// The crypto provider everything here uses (explicit, so the process-wide
/// default does not matter).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsMaterial {
    /// Makes the CA and both server certificates. `request_client_cert`
    /// asks clients for a certificate (optional, any accepted).
    pub fn generate(hostname: &str, request_client_cert: bool) -> TlsMaterial {
        TlsMaterial::generate_with_ca(
            hostname,
            request_client_cert,
            "Postern testkit fake Exchange CA",
        )
    }

    /// [`TlsMaterial::generate`] with the CA's common name (fakes whose CAs
    /// must not be mistaken for each other by name).
    pub fn generate_with_ca(
        hostname: &str,
        request_client_cert: bool,
        ca_name: &str,
    ) -> TlsMaterial {
        let ca_key = KeyPair::generate().expect("generate CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, ca_name);
        ca_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let ca = ca_params.self_signed(&ca_key).expect("self-sign CA");

        let leaf = |names: Vec<String>| {
            let key = KeyPair::generate().expect("generate server key");
            let mut params = CertificateParams::new(names.clone()).expect("server cert params");
            params
                .distinguished_name
                .push(DnType::CommonName, names[0].as_str());
            params.use_authority_key_identifier_extension = true;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            let cert = params
                .signed_by(&key, &ca, &ca_key)
                .expect("sign server cert");
            let chain = vec![cert.der().clone(), ca.der().clone()];
            let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
            server_config(chain, key_der, request_client_cert)
        };

        let mut names = vec![hostname.to_string()];
        if hostname != "127.0.0.1" {
            names.push("127.0.0.1".to_string());
        }
        TlsMaterial {
            ca_pem: ca.pem(),
            good: leaf(names),
            wrong: leaf(vec![WRONG_NAME.to_string()]),
        }
    }
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    request_client_cert: bool,
) -> Arc<ServerConfig> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("TLS 1.2 and 1.3 are supported");
    let builder = if request_client_cert {
        builder.with_client_cert_verifier(Arc::new(AcceptAnyClientCert { provider }))
    } else {
        builder.with_no_client_auth()
    };
    Arc::new(
        builder
            .with_single_cert(chain, key)
            .expect("server certificate and key match"),
    )
}

/// Asks for a client certificate, accepts any (or none). The connector role
/// then compares the names in it against `required_client_cert_name`, the way
/// Exchange matches a certificate-based connector by CN/SAN.
struct AcceptAnyClientCert {
    provider: Arc<CryptoProvider>,
}

impl fmt::Debug for AcceptAnyClientCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AcceptAnyClientCert")
    }
}

impl ClientCertVerifier for AcceptAnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// One DER TLV: (tag, contents, rest of input).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// Iterates the TLVs inside a constructed value.
fn children(mut input: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (tag, value, rest) = tlv(input)?;
        input = rest;
        Some((tag, value))
    })
}

const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];

/// Subject CN(s) and SAN dNSName entries of a DER certificate. Malformed
/// input gives whatever was found before the damage, never a panic.
pub fn cert_names(der: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let Some((0x30, cert, _)) = tlv(der) else {
        return names;
    };
    let Some((0x30, tbs, _)) = tlv(cert) else {
        return names;
    };
    // tbsCertificate: [0] version?, serial, signature, issuer, validity,
    // subject, spki, [1]?, [2]?, [3] extensions?
    let fields: Vec<(u8, &[u8])> = children(tbs).collect();
    let skip = usize::from(fields.first().map(|f| f.0) == Some(0xa0));
    if let Some((0x30, subject)) = fields.get(skip + 4) {
        for (_, rdn) in children(subject) {
            for (_, atv) in children(rdn) {
                let mut parts = children(atv);
                if let (Some((0x06, oid)), Some((_, value))) = (parts.next(), parts.next()) {
                    if oid == OID_CN {
                        names.push(String::from_utf8_lossy(value).into_owned());
                    }
                }
            }
        }
    }
    for (tag, explicit) in fields.iter().skip(skip + 6) {
        if *tag != 0xa3 {
            continue;
        }
        let Some((0x30, exts, _)) = tlv(explicit) else {
            continue;
        };
        for (_, ext) in children(exts) {
            let parts: Vec<(u8, &[u8])> = children(ext).collect();
            if parts.first() != Some(&(0x06, OID_SAN)) {
                continue;
            }
            let Some((0x04, octets)) = parts.last() else {
                continue;
            };
            let Some((0x30, general_names, _)) = tlv(octets) else {
                continue;
            };
            for (tag, value) in children(general_names) {
                if tag == 0x82 {
                    names.push(String::from_utf8_lossy(value).into_owned());
                }
            }
        }
    }
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_generated_certificate() {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["relay.contoso.com".into(), "10.0.0.1".into()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "contoso.com");
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            cert_names(cert.der()),
            vec!["contoso.com".to_string(), "relay.contoso.com".to_string()]
        );
    }

    #[test]
    fn hostile_input_gives_no_names() {
        for input in [
            &b""[..],
            &[0x30],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x02, 0x30, 0x00],
            &[0x04, 0x00],
        ] {
            assert!(cert_names(input).is_empty(), "{input:?}");
        }
    }
}
