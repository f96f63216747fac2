//! Checks on where Postern sends secrets and mail: URLs that receive the
//! client secret and refresh tokens (`oauth.authority`) are parsed with the
//! `url` crate, never by hand, and must be https unless the real host is
//! loopback; and which hosts are Microsoft's own (they always offer TLS).

use url::{Host, Url};

/// https only, except for a loopback host (the test fakes). The host is
/// the one the URL really names: `http://[::1]@evil.example` names
/// `evil.example` (the part before `@` is a user name), so it is refused.
pub(super) fn validate_authority(authority: &str) -> Result<(), String> {
    let url = Url::parse(authority).map_err(|e| format!("{authority:?} is not a URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{authority:?} must not carry a user name or password (the part before \"@\")"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{authority:?} must be a plain address, without \"?\" or \"#\""
        ));
    }
    let Some(host) = url.host() else {
        return Err(format!("{authority:?} names no host"));
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&host) => Ok(()),
        "http" => Err(format!(
            "{authority:?} must use https (plain http is allowed only for a loopback host)"
        )),
        _ => Err(format!("{authority:?} must be an https URL")),
    }
}

/// `graph.endpoint`: the same rules as the authority (the access token
/// goes there), and a service root only: no path beyond `/` (Postern adds
/// `/v1.0/...` itself).
pub fn validate_graph_endpoint(endpoint: &str) -> Result<(), String> {
    validate_authority(endpoint)?;
    let url = Url::parse(endpoint).map_err(|e| format!("{endpoint:?} is not a URL: {e}"))?;
    if url.path() != "/" && !url.path().is_empty() {
        return Err(format!(
            "{endpoint:?} must be the service root only, e.g. https://graph.microsoft.com (without {:?}: Postern adds /v1.0 itself)",
            url.path()
        ));
    }
    Ok(())
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// Domains under which Exchange Online's SMTP endpoints live.
const MICROSOFT_DOMAINS: &[&str] = &[
    "outlook.com",
    "office365.com",
    "microsoft.com",
    "office.com",
    "outlook.cn",
    "office365.us",
];

/// True for a host of Microsoft's own (`smtp.office365.com`, a tenant's
/// `*.mail.protection.outlook.com`, …).
pub fn is_microsoft_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    MICROSOFT_DOMAINS
        .iter()
        .any(|d| host == *d || host.ends_with(&format!(".{d}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        for (a, ok) in [
            ("https://login.microsoftonline.com", true),
            ("https://login.microsoftonline.com/", true),
            ("http://127.0.0.1:9999", true),
            ("http://localhost:1", true),
            ("http://[::1]:80", true),
            ("http://login.example.com", false),
            // The hand-written parser read these as loopback.
            ("http://[::1]@evil.example", false),
            ("http://127.0.0.1@evil.example", false),
            ("http://localhost:80@evil.example/", false),
            ("http://evil.example#@127.0.0.1", false),
            ("http://evil.example?@localhost", false),
            ("https://user:pw@login.microsoftonline.com", false),
            ("http://localhost.evil.example", false),
            ("ftp://127.0.0.1", false),
            ("login.microsoftonline.com", false),
            ("", false),
        ] {
            assert_eq!(
                validate_authority(a).is_ok(),
                ok,
                "{a:?}: {:?}",
                validate_authority(a)
            );
        }
    }

    #[test]
    fn graph_endpoints() {
        for (e, ok) in [
            ("https://graph.microsoft.com", true),
            ("https://graph.microsoft.com/", true),
            ("https://graph.microsoft.us", true),
            ("http://127.0.0.1:41234", true),
            ("http://graph.microsoft.com", false),
            ("https://graph.microsoft.com/v1.0", false),
            ("http://[::1]@evil.example", false),
            ("graph.microsoft.com", false),
        ] {
            assert_eq!(
                validate_graph_endpoint(e).is_ok(),
                ok,
                "{e:?}: {:?}",
                validate_graph_endpoint(e)
            );
        }
    }

    #[test]
    fn microsoft_hosts() {
        for (h, want) in [
            ("smtp.office365.com", true),
            ("contoso-com.mail.protection.outlook.com", true),
            ("CONTOSO-COM.MAIL.PROTECTION.OUTLOOK.COM.", true),
            ("outlook.com", true),
            ("notoutlook.com", false),
            ("outlook.com.evil.example", false),
            ("smarthost.contoso.local", false),
            ("127.0.0.1", false),
        ] {
            assert_eq!(is_microsoft_host(h), want, "{h}");
        }
    }
}
