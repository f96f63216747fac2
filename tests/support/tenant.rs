//! Relay and Direct Send set-ups: a fake DNS holding the tenant's MX, the
//! fake Exchange playing the tenant endpoint it names, and Postern's config
//! for those modes (no sign-in, `[dns] servers` pointed at the fake).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use postern_testkit::{FakeDns, Zone};

use super::Upstream;

pub const DOMAIN: &str = "contoso.com";
/// The tenant's Exchange Online endpoint: the fake's certificate names it.
pub const ENDPOINT: &str = "contoso-com.mail.protection.outlook.com";

/// `contoso.com MX 10 contoso-com.mail.protection.outlook.com`, which is 127.0.0.1.
pub fn tenant_zone() -> Zone {
    Zone::new()
        .mx(DOMAIN, 10, ENDPOINT)
        .a(ENDPOINT, Ipv4Addr::LOCALHOST)
}

pub async fn tenant_dns() -> FakeDns {
    FakeDns::start(tenant_zone()).await
}

/// Turns the base config into `mode` ("relay" or "direct-send") for
/// contoso.com: no upstream.host (the MX names it), no OAuth, DNS from `dns`.
pub fn tenant_config(config: &mut toml::Table, mode: &str, dns: &FakeDns) {
    let upstream = config["upstream"].as_table_mut().unwrap();
    upstream.remove("host");
    upstream.insert("mode".into(), mode.into());
    upstream.insert("domain".into(), DOMAIN.into());
    config.remove("oauth");
    let servers = toml::Value::Array(vec![dns.addr().to_string().into()]);
    super::set(config, "dns.servers", servers);
}

/// Uses the client certificate `(cert, key)` for the connector.
pub fn use_client_cert(config: &mut toml::Table, (cert, key): &(PathBuf, PathBuf)) {
    super::set(config, "upstream.client_cert", cert.display().to_string());
    super::set(config, "upstream.client_key", key.display().to_string());
}

/// A self-signed client certificate with SAN `name`, written to `dir`
/// (the key readable only by this user, as Postern insists).
pub fn client_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let ck = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    (cert, key)
}

/// Subjects of everything that arrived upstream, in order.
pub fn upstream_subjects(up: &Upstream) -> Vec<String> {
    up.exchange
        .messages()
        .iter()
        .map(|m| {
            String::from_utf8_lossy(&m.data)
                .lines()
                .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
                .unwrap_or_default()
        })
        .collect()
}
