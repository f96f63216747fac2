//! Where a delivery lane connects, found through [`crate::dns`].
//!
//! Connector relay and Direct Send with no `upstream.host` follow the
//! tenant's MX ([`Endpoints`]: Microsoft endpoints first, then by
//! preference); otherwise the one configured host is used. Every host is
//! resolved with the same [`Resolver`] (so `[dns] servers` applies to all of
//! them) and connected to by address, while TLS checks the certificate
//! against the host NAME. [`open_first`] falls back to the next host when a
//! host cannot be reached; any other failure (TLS, a refusal) is the answer.

use std::net::SocketAddr;

use super::classify::{Action, Stage, Verdict};
use super::transcript::Transcript;
use super::upstream::{Connection, Credentials, UpstreamError, UpstreamSettings};
use crate::config::{Config, UpstreamMode};
use crate::dns::{DnsError, Endpoints, Resolver};

/// How hosts are found for one engine's lanes.
pub struct Route {
    /// `Err` when the resolver could not be set up (no usable system DNS
    /// configuration); every attempt then says why, and a fixed host is
    /// connected to by name through the operating system instead.
    resolver: Result<Resolver, DnsError>,
    /// The tenant's MX, when that is what names the endpoint.
    endpoints: Option<Endpoints>,
    /// The tenant domain, for explanations.
    domain: String,
}

/// No usable endpoint could be found in DNS.
#[derive(Debug, Clone, thiserror::Error)]
#[error("could not find the endpoint for {name}: {error}")]
pub struct RouteError {
    /// The domain (MX) or host (A/AAAA) that was looked up.
    pub name: String,
    pub error: DnsError,
}

impl RouteError {
    /// Always worth retrying: DNS answers change, and a missing record is
    /// the admin's to fix while the message waits.
    pub fn verdict(&self) -> Verdict {
        Verdict {
            action: Action::Retry,
            summary: "Postern could not find your Microsoft 365 mail endpoint in DNS.",
            fix: "Check that upstream.domain is your Microsoft 365 domain and that its MX record points to <tenant>.mail.protection.outlook.com (or set upstream.host to that endpoint); if this office uses its own DNS servers, check [dns] servers. Postern keeps retrying.",
        }
    }
}

impl Route {
    pub fn new(config: &Config) -> Route {
        let u = &config.upstream;
        let resolver = Resolver::new(&config.dns);
        if let Err(e) = &resolver {
            tracing::warn!(error = %e, "DNS resolver unavailable");
        }
        let by_mx = matches!(u.mode, UpstreamMode::Relay | UpstreamMode::DirectSend)
            && u.effective_host().is_empty();
        let domain = u.effective_domain();
        let endpoints = match (&resolver, by_mx) {
            (Ok(r), true) => Some(Endpoints::new(r.clone(), domain.clone())),
            _ => None,
        };
        Route {
            resolver,
            endpoints,
            domain,
        }
    }

    /// One settings per host to try, in order, each with the addresses the
    /// host resolved to. Hosts that do not resolve are skipped (and noted);
    /// an error only when none does.
    pub async fn targets(
        &self,
        base: &UpstreamSettings,
        t: &mut Transcript,
    ) -> Result<Vec<UpstreamSettings>, RouteError> {
        let resolver = match &self.resolver {
            Ok(r) => r,
            Err(error) if self.endpoints.is_none() && !base.host.is_empty() => {
                t.note(&format!("{error}; asking the operating system instead"));
                return Ok(vec![base.clone()]);
            }
            Err(error) => {
                return Err(RouteError {
                    name: self.domain.clone(),
                    error: error.clone(),
                })
            }
        };
        let hosts = match &self.endpoints {
            Some(endpoints) => {
                let hosts = endpoints.hosts().await.map_err(|error| RouteError {
                    name: self.domain.clone(),
                    error,
                })?;
                t.note(&format!(
                    "MX of {}: {}",
                    endpoints.domain(),
                    hosts.join(", ")
                ));
                hosts
            }
            None => vec![base.host.clone()],
        };
        let mut targets = Vec::with_capacity(hosts.len());
        let mut last = None;
        for host in hosts {
            match resolver.ips(&host).await {
                Ok(ips) => {
                    let addrs: Vec<SocketAddr> = ips
                        .iter()
                        .map(|ip| SocketAddr::new(*ip, base.port))
                        .collect();
                    targets.push(UpstreamSettings {
                        host,
                        addrs,
                        ..base.clone()
                    });
                }
                Err(error) => {
                    t.note(&format!("skipping {host}: {error}"));
                    last = Some(RouteError { name: host, error });
                }
            }
        }
        match (targets.is_empty(), last) {
            (true, Some(mut e)) => {
                if self.endpoints.is_some() {
                    e.name = self.domain.clone();
                }
                Err(e)
            }
            _ => Ok(targets),
        }
    }
}

/// Opens a connection to the first target that can be reached. A target
/// that refuses the TCP connection or does not answer it in time gives way
/// to the next; any other failure (TLS, an SMTP refusal) is returned as it
/// is, since the next endpoint of the same tenant would most likely say the
/// same.
pub async fn open_first(
    targets: &[UpstreamSettings],
    creds: &Credentials,
    t: &mut Transcript,
) -> Result<Connection, UpstreamError> {
    for (i, target) in targets.iter().enumerate() {
        match Connection::open(target, creds, t).await {
            Err(e) if unreachable(&e) && i + 1 < targets.len() => {
                t.note(&format!("{e}; trying the next endpoint"));
            }
            result => return result,
        }
    }
    Err(UpstreamError::Connect {
        host: String::new(),
        port: 0,
        detail: "no endpoint to connect to".into(),
    })
}

/// The host could not be reached at all (not a TLS or SMTP refusal).
fn unreachable(e: &UpstreamError) -> bool {
    matches!(
        e,
        UpstreamError::Connect { .. }
            | UpstreamError::Timeout {
                stage: Stage::Connect
            }
    )
}
