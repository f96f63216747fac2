//! Legacy TLS for old devices (`listener.legacy_tls`): STARTTLS and implicit
//! TLS served by OpenSSL, which still speaks TLS 1.0/1.1 and the old cipher
//! suites such firmware offers (`AES128-SHA`, `DES-CBC3-SHA`), for devices
//! whose address is in the legacy-TLS networks only. Everyone else, and
//! everything upstream, stays on rustls with TLS 1.2+. Which addresses
//! those are, and the checks on the setting, is `config::legacy_tls`.
//!
//! The OpenSSL context uses the listener's certificate and key (the same
//! files as rustls). The old suites use RSA key exchange, which needs an
//! RSA certificate; when the listener's key is not RSA (the generated one
//! is ECDSA P-256) an RSA-2048 self-signed companion is generated once in
//! `<data_dir>/tls/` and loaded beside it, and OpenSSL picks whichever the
//! device's suite needs. Modern clients on this path still get TLS 1.2/1.3
//! with the listener's own certificate.
//!
//! OpenSSL 3 refuses TLS 1.0/1.1 (SHA-1 handshake signatures) above
//! security level 0, hence `@SECLEVEL=0` in the cipher string. Builds whose
//! OpenSSL lacks a listed suite (Debian's has no 3DES) simply leave it out.

use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::pin::Pin;

use ipnet::IpNet;
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey};
use openssl::rsa::Rsa;
use openssl::ssl::{Ssl, SslAcceptor, SslMethod, SslOptions, SslRef, SslVersion};
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509NameBuilder, X509};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

use super::tls::{identity_files, names, tls_err, write_private};
use super::ListenerError;
use crate::config::ListenerConfig;

/// The RSA companion certificate and key under `<data_dir>/tls/`.
pub const RSA_CERT_FILE: &str = "legacy-rsa-cert.pem";
pub const RSA_KEY_FILE: &str = "legacy-rsa-key.pem";

/// TLS 1.2 AEAD suites first (server preference), then the CBC suites TLS
/// 1.0/1.1 devices offer, newest key exchange first. TLS 1.3 suites are
/// OpenSSL's defaults.
pub const CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:\
AES128-GCM-SHA256:AES256-GCM-SHA384:\
ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:\
AES128-SHA:AES256-SHA:DES-CBC3-SHA:@SECLEVEL=0";

/// The OpenSSL side of the device listener, and who gets it.
pub struct LegacyTls {
    acceptor: SslAcceptor,
    networks: Vec<IpNet>,
}

/// What a finished legacy handshake negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// "TLSv1.0", "TLSv1.1", "TLSv1.2" or "TLSv1.3".
    pub version: String,
    /// OpenSSL's name for the suite, e.g. "AES128-SHA".
    pub cipher: String,
}

impl LegacyTls {
    /// The OpenSSL acceptor when `listener.legacy_tls` is on; None when off.
    pub fn new(
        cfg: &ListenerConfig,
        data_dir: &Path,
        hostname: &str,
    ) -> Result<Option<LegacyTls>, ListenerError> {
        if !cfg.legacy_tls {
            return Ok(None);
        }
        let (cert_path, key_path) = identity_files(cfg, data_dir, hostname)?;
        let ssl_err = |path: &Path, what: &str, e: openssl::error::ErrorStack| {
            tls_err(path, format!("{what} (OpenSSL, for legacy TLS): {e}"))
        };
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls())
            .map_err(|e| ssl_err(&cert_path, "cannot set up TLS", e))?;
        b.clear_options(SslOptions::NO_TLSV1 | SslOptions::NO_TLSV1_1);
        b.set_options(SslOptions::CIPHER_SERVER_PREFERENCE);
        b.set_min_proto_version(Some(SslVersion::TLS1))
            .and_then(|()| b.set_cipher_list(CIPHERS))
            .map_err(|e| ssl_err(&cert_path, "cannot enable TLS 1.0", e))?;
        b.set_certificate_chain_file(&cert_path)
            .map_err(|e| ssl_err(&cert_path, "cannot load the certificate", e))?;
        let key = read_key(&key_path)?;
        b.set_private_key(&key)
            .and_then(|()| b.check_private_key())
            .map_err(|e| ssl_err(&cert_path, "certificate and key do not work together", e))?;
        if key.id() != Id::RSA {
            let dir = data_dir.join("tls");
            let (c, k) = (dir.join(RSA_CERT_FILE), dir.join(RSA_KEY_FILE));
            if !c.exists() || !k.exists() {
                generate_rsa(cfg, &dir, hostname)?;
            }
            let cert = std::fs::read(&c)
                .map_err(|e| tls_err(&c, e.to_string()))
                .and_then(|pem| {
                    X509::from_pem(&pem).map_err(|e| tls_err(&c, format!("not a certificate: {e}")))
                })?;
            let key = read_key(&k)?;
            b.set_certificate(&cert)
                .and_then(|()| b.set_private_key(&key))
                .and_then(|()| b.check_private_key())
                .map_err(|e| ssl_err(&c, "cannot use the RSA companion certificate", e))?;
        }
        let networks = cfg.legacy_tls_networks();
        let list: Vec<String> = networks.iter().map(|n| n.to_string()).collect();
        tracing::warn!(networks = %list.join(", "), "legacy TLS is on: devices in these networks may use TLS 1.0/1.1 and old cipher suites");
        Ok(Some(LegacyTls {
            acceptor: b.build(),
            networks,
        }))
    }

    /// Whether the device at `ip` (already canonical) is served by OpenSSL.
    pub fn covers(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|n| n.contains(&ip))
    }

    /// Runs the server handshake on `tcp`.
    pub async fn accept(&self, tcp: TcpStream) -> io::Result<SslStream<TcpStream>> {
        let ssl = Ssl::new(self.acceptor.context()).map_err(io::Error::other)?;
        let mut stream = SslStream::new(ssl, tcp).map_err(io::Error::other)?;
        Pin::new(&mut stream).accept().await.map_err(|e| {
            let detail = e
                .ssl_error()
                .map(|s| s.to_string())
                .unwrap_or_else(|| e.to_string());
            io::Error::other(format!("TLS handshake failed (legacy TLS): {detail}"))
        })?;
        Ok(stream)
    }
}

/// The protocol and suite an OpenSSL session negotiated.
pub fn negotiated(ssl: &SslRef) -> Negotiated {
    let version = match ssl.version_str() {
        "TLSv1" => "TLSv1.0",
        v => v,
    };
    Negotiated {
        version: version.to_string(),
        cipher: ssl
            .current_cipher()
            .map(|c| c.name().to_string())
            .unwrap_or_default(),
    }
}

fn read_key(path: &Path) -> Result<PKey<openssl::pkey::Private>, ListenerError> {
    let pem = std::fs::read(path).map_err(|e| tls_err(path, e.to_string()))?;
    PKey::private_key_from_pem(&pem).map_err(|e| tls_err(path, format!("not a PEM key file: {e}")))
}

/// A self-signed RSA-2048 certificate with the same names as the generated
/// listener certificate, for suites with RSA key exchange.
fn generate_rsa(cfg: &ListenerConfig, dir: &Path, hostname: &str) -> Result<(), ListenerError> {
    let fail = |e: openssl::error::ErrorStack| {
        tls_err(
            dir,
            format!("cannot generate the RSA certificate for legacy TLS: {e}"),
        )
    };
    let key = Rsa::generate(2048).and_then(PKey::from_rsa).map_err(fail)?;
    let mut name = X509NameBuilder::new().map_err(fail)?;
    name.append_entry_by_nid(Nid::COMMONNAME, &format!("Postern on {hostname}"))
        .map_err(fail)?;
    let name = name.build();
    let mut serial = [0u8; 16];
    rand::Rng::fill(&mut rand::thread_rng(), &mut serial[..]);
    serial[0] &= 0x7f;
    let mut b = X509::builder().map_err(fail)?;
    b.set_version(2).map_err(fail)?;
    let serial = BigNum::from_slice(&serial)
        .and_then(|n| Asn1Integer::from_bn(&n))
        .map_err(fail)?;
    b.set_serial_number(&serial).map_err(fail)?;
    b.set_subject_name(&name).map_err(fail)?;
    b.set_issuer_name(&name).map_err(fail)?;
    b.set_pubkey(&key).map_err(fail)?;
    let not_before = Asn1Time::days_from_now(0).map_err(fail)?;
    let not_after = Asn1Time::days_from_now(20 * 365).map_err(fail)?;
    b.set_not_before(&not_before).map_err(fail)?;
    b.set_not_after(&not_after).map_err(fail)?;
    let mut san = SubjectAlternativeName::new();
    for n in names(cfg, hostname) {
        if n.parse::<IpAddr>().is_ok() {
            san.ip(&n);
        } else if n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            // Odd host names are left out, as for the rustls certificate.
            san.dns(&n);
        }
    }
    let san = san.build(&b.x509v3_context(None, None)).map_err(fail)?;
    b.append_extension(san).map_err(fail)?;
    b.sign(&key, MessageDigest::sha256()).map_err(fail)?;
    let cert = b.build().to_pem().map_err(fail)?;
    let key = key.private_key_to_pem_pkcs8().map_err(fail)?;
    std::fs::create_dir_all(dir).map_err(|e| tls_err(dir, e.to_string()))?;
    let key_path = dir.join(RSA_KEY_FILE);
    write_private(&key_path, &key).map_err(|e| tls_err(&key_path, e.to_string()))?;
    let cert_path = dir.join(RSA_CERT_FILE);
    std::fs::write(&cert_path, cert).map_err(|e| tls_err(&cert_path, e.to_string()))?;
    tracing::info!(path = %cert_path.display(), "generated an RSA certificate for legacy TLS (old cipher suites need RSA)");
    Ok(())
}
