//! The listener's TLS identity: the configured PEM certificate and key, or
//! a self-signed certificate generated on first start and kept in
//! `<data_dir>/tls/` (key mode 0600 on unix) so devices that pin it keep
//! working across restarts.
//!
//! The generated certificate names the host name, "localhost" and every
//! specific IP the listener is configured on. rustls is always built with
//! the ring provider explicitly, so other crates enabling another provider
//! cannot make `ServerConfig::builder()` ambiguous.
//!
//! The same files serve the OpenSSL path for old devices (`legacy_tls`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};

use super::ListenerError;
use crate::config::ListenerConfig;

/// File names under `<data_dir>/tls/`.
pub const CERT_FILE: &str = "cert.pem";
pub const KEY_FILE: &str = "key.pem";

/// The certificate and key files in effect: the configured ones, or the
/// generated pair (made now if missing). Both TLS stacks use these.
pub(crate) fn identity_files(
    cfg: &ListenerConfig,
    data_dir: &Path,
    hostname: &str,
) -> Result<(PathBuf, PathBuf), ListenerError> {
    Ok(match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => {
            let dir = data_dir.join("tls");
            let (c, k) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
            if !c.exists() || !k.exists() {
                generate(cfg, &dir, hostname)?;
            }
            (c, k)
        }
    })
}

/// Builds the rustls server configuration for STARTTLS and implicit TLS.
pub fn server_config(
    cfg: &ListenerConfig,
    data_dir: &Path,
    hostname: &str,
) -> Result<Arc<rustls::ServerConfig>, ListenerError> {
    let (cert_path, key_path) = identity_files(cfg, data_dir, hostname)?;
    let certs = load_certs(&cert_path)?;
    let key = load_key(&key_path)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| {
            tls_err(
                &cert_path,
                format!("certificate and key do not work together: {e}"),
            )
        })?;
    Ok(Arc::new(config))
}

pub(super) fn tls_err(path: &Path, message: impl Into<String>) -> ListenerError {
    ListenerError::Tls {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// The names the generated certificate carries.
pub(super) fn names(cfg: &ListenerConfig, hostname: &str) -> Vec<String> {
    let mut names = vec![hostname.to_string(), "localhost".to_string()];
    let ips = cfg.listen.iter().chain(&cfg.tls_listen).map(|a| a.ip());
    for ip in ips
        .filter(|ip| !ip.is_unspecified())
        .map(|ip| ip.to_string())
    {
        if !names.contains(&ip) {
            names.push(ip);
        }
    }
    if !names.iter().any(|n| n.parse::<IpAddr>().is_ok()) {
        names.push("127.0.0.1".into());
    }
    names.dedup();
    names
}

fn generate(cfg: &ListenerConfig, dir: &Path, hostname: &str) -> Result<(), ListenerError> {
    // Names rcgen cannot encode (odd host names) are left out rather than
    // failing start-up: "localhost" and the IPs still work.
    let usable: Vec<String> = names(cfg, hostname)
        .into_iter()
        .filter(|n| rcgen::CertificateParams::new(vec![n.clone()]).is_ok())
        .collect();
    let mut params = rcgen::CertificateParams::new(usable)
        .map_err(|e| tls_err(dir, format!("cannot generate a certificate: {e}")))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("Postern on {hostname}"));
    let key = rcgen::KeyPair::generate()
        .map_err(|e| tls_err(dir, format!("cannot generate a key: {e}")))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| tls_err(dir, format!("cannot generate a certificate: {e}")))?;
    std::fs::create_dir_all(dir).map_err(|e| tls_err(dir, e.to_string()))?;
    let key_path = dir.join(KEY_FILE);
    write_private(&key_path, key.serialize_pem().as_bytes())
        .map_err(|e| tls_err(&key_path, e.to_string()))?;
    let cert_path = dir.join(CERT_FILE);
    std::fs::write(&cert_path, cert.pem()).map_err(|e| tls_err(&cert_path, e.to_string()))?;
    tracing::info!(path = %cert_path.display(), "generated a self-signed TLS certificate for the listener");
    Ok(())
}

/// Writes a file only the owner can read (created with mode 0600 on unix).
pub(super) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(bytes)?;
    f.sync_all()
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ListenerError> {
    let data = std::fs::read(path).map_err(|e| tls_err(path, e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(tls_err(
            path,
            "no certificate in the file (expected -----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, ListenerError> {
    let data = std::fs::read(path).map_err(|e| tls_err(path, e.to_string()))?;
    PrivateKeyDer::from_pem_slice(&data).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => tls_err(
            path,
            "no private key in the file (expected -----BEGIN PRIVATE KEY-----)",
        ),
        e => tls_err(path, format!("not a PEM key file: {e}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ListenerConfig {
            listen: vec![
                "192.168.1.5:25".parse().unwrap(),
                "0.0.0.0:2525".parse().unwrap(),
            ],
            ..Default::default()
        };
        server_config(&cfg, dir.path(), "relay.example").unwrap();
        let cert = std::fs::read(dir.path().join("tls").join(CERT_FILE)).unwrap();
        server_config(&cfg, dir.path(), "relay.example").unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("tls").join(CERT_FILE)).unwrap(),
            cert,
            "reused, not regenerated"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(dir.path().join("tls").join(KEY_FILE)).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(
            names(&cfg, "relay.example"),
            ["relay.example", "localhost", "192.168.1.5"]
        );
    }

    #[test]
    fn configured_files_with_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        let key = dir.path().join("k.pem");
        std::fs::write(&cert, "garbage").unwrap();
        std::fs::write(&key, "garbage").unwrap();
        let cfg = ListenerConfig {
            tls_cert: Some(cert.clone()),
            tls_key: Some(key),
            ..Default::default()
        };
        let err = server_config(&cfg, dir.path(), "h")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("c.pem") && err.contains("no certificate"),
            "{err}"
        );
        assert!(!dir.path().join("tls").exists(), "nothing generated");
    }
}
