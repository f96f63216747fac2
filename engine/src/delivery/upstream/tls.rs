//! TLS parameters for upstream connections, built once per configuration:
//! the `ca_file` anchors and the connector's client certificate are read
//! and parsed when the engine loads its config ([`TlsCache::load`]), and
//! lettre's parameters (a rustls `ClientConfig` inside) are built once per
//! host name and then shared by every connection to that host. No file is
//! read on a delivery's path; a config reload (a new engine) loads them
//! afresh. A problem with the files is remembered and reported on each
//! connection attempt, as before (the message is deferred with it).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use lettre::transport::smtp::client::{Certificate, Identity, TlsParameters, TlsVersion};
use rustls::pki_types::{pem::PemObject, CertificateDer};

/// Which files the material came from.
type Source = (Option<PathBuf>, Option<(PathBuf, PathBuf)>);

/// Shared, cheap to clone. `Default` is empty: the files are then read on
/// first use (tests that build settings by hand).
#[derive(Clone, Default)]
pub struct TlsCache(Arc<Mutex<Inner>>);

#[derive(Default)]
struct Inner {
    source: Option<Source>,
    material: Option<Result<Material, String>>,
    by_host: HashMap<String, TlsParameters>,
}

#[derive(Clone)]
struct Material {
    root: Option<Certificate>,
    identity: Option<Identity>,
}

impl std::fmt::Debug for TlsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.0.lock().unwrap();
        f.debug_struct("TlsCache")
            .field("source", &inner.source)
            .field("hosts", &inner.by_host.len())
            .finish()
    }
}

impl TlsCache {
    /// Reads and parses the files now (blocking; once per config load).
    pub fn load(ca_file: Option<&Path>, client_cert: Option<(&Path, &Path)>) -> TlsCache {
        let source: Source = (
            ca_file.map(Path::to_path_buf),
            client_cert.map(|(c, k)| (c.to_path_buf(), k.to_path_buf())),
        );
        let material = Some(load_material(&source));
        TlsCache(Arc::new(Mutex::new(Inner {
            source: Some(source),
            material,
            by_host: HashMap::new(),
        })))
    }

    /// lettre's parameters for `host` with these files: TLS 1.2 minimum,
    /// webpki roots plus the `ca_file` anchors, the client certificate when
    /// set. Built on first use for a host, then shared.
    pub(super) fn params(
        &self,
        host: &str,
        ca_file: Option<&PathBuf>,
        client_cert: Option<&(PathBuf, PathBuf)>,
    ) -> Result<TlsParameters, String> {
        let mut inner = self.0.lock().unwrap();
        let source: Source = (ca_file.cloned(), client_cert.cloned());
        if inner.source.as_ref() != Some(&source) {
            // Not what was loaded (settings built by hand, or changed):
            // load these files once and forget what was built before.
            inner.material = Some(load_material(&source));
            inner.source = Some(source);
            inner.by_host.clear();
        }
        if let Some(params) = inner.by_host.get(host) {
            return Ok(params.clone());
        }
        let material = inner.material.clone().expect("loaded above")?;
        let mut builder =
            TlsParameters::builder(host.to_owned()).set_min_tls_version(TlsVersion::Tlsv12);
        if let Some(root) = material.root {
            builder = builder.add_root_certificate(root);
        }
        if let Some(identity) = material.identity {
            builder = builder.identify_with(identity);
        }
        let params = builder.build_rustls().map_err(|e| e.to_string())?;
        inner.by_host.insert(host.to_owned(), params.clone());
        Ok(params)
    }

    /// How many hosts have parameters built (tests).
    pub fn hosts_built(&self) -> usize {
        self.0.lock().unwrap().by_host.len()
    }
}

fn load_material((ca_file, client_cert): &Source) -> Result<Material, String> {
    let root = match ca_file {
        Some(path) => {
            let pem = read(path)?;
            Some(Certificate::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?)
        }
        None => None,
    };
    let identity = match client_cert {
        Some((cert_path, key_path)) => {
            let cert_pem = read(cert_path)?;
            let key_pem = read(key_path)?;
            // lettre 0.11's rustls Identity::from_pem takes the certificate
            // as DER despite its name (it wraps the bytes unparsed), so
            // convert. Only the leaf is presented.
            let der = CertificateDer::pem_slice_iter(&cert_pem)
                .next()
                .ok_or_else(|| format!("{}: no certificate found", cert_path.display()))?
                .map_err(|e| format!("{}: {e}", cert_path.display()))?;
            Some(
                Identity::from_pem(der.as_ref(), &key_pem)
                    .map_err(|e| format!("{}: {e}", key_path.display()))?,
            )
        }
        None => None,
    };
    Ok(Material { root, identity })
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}
