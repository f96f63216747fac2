//! The HTTPS clients Postern makes besides SMTP — Microsoft Graph and the
//! OAuth token endpoint: reqwest on rustls, trusting the web PKI roots plus
//! the certificates in `upstream.ca_file` (a TLS-inspecting proxy's CA, or a
//! test CA), following no redirects (a token must not travel elsewhere).
//!
//! [`certificate_problem`] finds a certificate refusal in a request error's
//! chain (by the rustls error, not by its text) and says it in plain words,
//! for the token endpoint's errors and `postern diagnose`.

use std::error::Error;
use std::path::Path;
use std::time::Duration;

/// A client builder with the trust anchors and rules every HTTPS client of
/// Postern shares; the caller sets its timeouts and builds it.
pub fn client_builder(ca_file: Option<&Path>) -> Result<reqwest::ClientBuilder, String> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none());
    if let Some(ca) = ca_file {
        for cert in read_ca_file(ca)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder)
}

/// [`client_builder`] with one overall `timeout`, built.
pub fn client(ca_file: Option<&Path>, timeout: Duration) -> Result<reqwest::Client, String> {
    client_builder(ca_file)?
        .timeout(timeout)
        .build()
        .map_err(|e| format!("cannot set up HTTPS: {e}"))
}

/// The certificates of a PEM file (`upstream.ca_file`).
pub fn read_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("upstream.ca_file: cannot read {}: {e}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        format!(
            "upstream.ca_file: {} holds no usable PEM certificate: {e}",
            path.display()
        )
    })?;
    if certs.is_empty() {
        return Err(format!(
            "upstream.ca_file: {} holds no PEM certificate",
            path.display()
        ));
    }
    Ok(certs)
}

/// What to do about an untrusted certificate, for every message that names one.
pub const UNTRUSTED_FIX: &str = "If a TLS-inspecting proxy or firewall sits between this machine and Microsoft, add its CA certificate (PEM) with upstream.ca_file, or exempt Microsoft's hosts from inspection; also check that this machine's clock is right.";

/// When `e` (or an error it wraps) is rustls refusing the server's
/// certificate: what was wrong with it, in plain words, naming `host`.
pub fn certificate_problem(e: &(dyn Error + 'static), host: &str) -> Option<String> {
    use rustls::CertificateError as C;
    let err = find_rustls(e)?;
    let rustls::Error::InvalidCertificate(cert) = err else {
        return Some(format!("the TLS handshake with {host} failed: {err}"));
    };
    let what = match cert {
        C::UnknownIssuer => format!(
            "the certificate {host} presented is signed by a CA this machine does not trust (upstream.ca_file does not hold it either)"
        ),
        C::BadSignature => format!(
            "the certificate {host} presented is signed by a CA this machine does not trust (one of the same name is trusted, but did not sign it)"
        ),
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            format!("the certificate {host} presented is not valid for the name {host}")
        }
        C::Expired | C::ExpiredContext { .. } => {
            format!("the certificate {host} presented has expired (or this machine's clock is wrong)")
        }
        C::NotValidYet | C::NotValidYetContext { .. } => format!(
            "the certificate {host} presented is not valid yet (or this machine's clock is wrong)"
        ),
        C::Revoked => format!("the certificate {host} presented has been revoked"),
        other => format!("the certificate {host} presented was refused: {other:?}"),
    };
    Some(what)
}

fn find_rustls<'a>(e: &'a (dyn Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&'a (dyn Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        // io::Error's source() skips the error it wraps: look inside.
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(r) = inner.downcast_ref::<rustls::Error>() {
                return Some(r);
            }
            if let Some(r) = find_rustls(inner) {
                return Some(r);
            }
        }
        cur = err.source();
    }
    None
}

/// The error and its sources, joined with `: `.
pub fn error_chain(e: &dyn Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_certificate_error_inside_io_errors() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let text = certificate_problem(&io, "graph.example").unwrap();
        assert!(text.contains("does not trust"), "{text}");
        let other = std::io::Error::other("reset");
        assert_eq!(certificate_problem(&other, "h"), None);
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let e = read_ca_file(&path).unwrap_err();
        assert!(e.starts_with("upstream.ca_file:"), "{e}");
        let e = read_ca_file(&dir.path().join("missing.pem")).unwrap_err();
        assert!(e.contains("cannot read"), "{e}");
    }
}
