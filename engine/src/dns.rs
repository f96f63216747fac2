//! Name resolution (MX, TXT, CNAME, addresses) on hickory-resolver, asking
//! the servers in `[dns] servers` or, when that is empty, the system's.
//!
//! Stand-in with the agreed API while the full module is written on the
//! `dns` branch; that one replaces this file on merge.

use std::net::IpAddr;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;

use crate::config::DnsConfig;

/// How long one query may take before the next attempt (seconds, like
/// resolv.conf's `timeout`).
const QUERY_TIMEOUT: Duration = Duration::from_secs(3);

/// A resolver. Cheap to clone.
#[derive(Clone)]
pub struct Resolver {
    inner: TokioResolver,
}

/// One MX record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxRecord {
    pub preference: u16,
    /// Without the trailing dot.
    pub exchange: String,
    pub ttl: Duration,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum DnsError {
    #[error("{name} has no {kind} record")]
    NoRecords { name: String, kind: &'static str },
    #[error("{0} does not exist in DNS")]
    NxDomain(String),
    #[error("looking up {name} failed: {detail}")]
    Failed { name: String, detail: String },
}

impl Resolver {
    pub fn new(cfg: &DnsConfig) -> Result<Resolver, DnsError> {
        let failed = |e: NetError| DnsError::Failed {
            name: "the DNS configuration".into(),
            detail: e.to_string(),
        };
        let mut builder = if cfg.servers.is_empty() {
            TokioResolver::builder_tokio().map_err(failed)?
        } else {
            let servers = cfg
                .servers
                .iter()
                .map(|s| {
                    let mut ns = NameServerConfig::udp_and_tcp(s.ip());
                    for c in &mut ns.connections {
                        c.port = s.port();
                    }
                    ns
                })
                .collect();
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(servers),
                TokioRuntimeProvider::default(),
            )
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.timeout = QUERY_TIMEOUT;
        opts.attempts = 2;
        let inner = builder.build().map_err(failed)?;
        Ok(Resolver { inner })
    }

    /// MX records, most preferred first.
    pub async fn mx(&self, domain: &str) -> Result<Vec<MxRecord>, DnsError> {
        let lookup = self
            .inner
            .mx_lookup(fqdn(domain))
            .await
            .map_err(|e| map_err(domain, "MX", e))?;
        let mut out: Vec<MxRecord> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => Some(MxRecord {
                    preference: mx.preference,
                    exchange: name_text(&mx.exchange.to_string()),
                    ttl: Duration::from_secs(r.ttl.into()),
                }),
                _ => None,
            })
            .collect();
        out.sort_by_key(|m| m.preference);
        if out.is_empty() {
            return Err(no_records(domain, "MX"));
        }
        Ok(out)
    }

    /// TXT records, each one's strings joined.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let lookup = self
            .inner
            .txt_lookup(fqdn(name))
            .await
            .map_err(|e| map_err(name, "TXT", e))?;
        let out: Vec<String> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect(),
                ),
                _ => None,
            })
            .collect();
        if out.is_empty() {
            return Err(no_records(name, "TXT"));
        }
        Ok(out)
    }

    /// The CNAME target, if `name` is an alias.
    pub async fn cname(&self, name: &str) -> Result<Option<String>, DnsError> {
        match self
            .inner
            .lookup(fqdn(name), hickory_resolver::proto::rr::RecordType::CNAME)
            .await
        {
            Ok(lookup) => Ok(lookup.answers().iter().find_map(|r| match &r.data {
                RData::CNAME(c) => Some(name_text(&c.0.to_string())),
                _ => None,
            })),
            Err(e) if e.is_no_records_found() && !e.is_nx_domain() => Ok(None),
            Err(e) => Err(map_err(name, "CNAME", e)),
        }
    }

    /// The host's addresses (IPv4 and IPv6).
    pub async fn ips(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let lookup = self
            .inner
            .lookup_ip(host)
            .await
            .map_err(|e| map_err(host, "address", e))?;
        let out: Vec<IpAddr> = lookup.iter().collect();
        if out.is_empty() {
            return Err(no_records(host, "address"));
        }
        Ok(out)
    }
}

fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

fn name_text(s: &str) -> String {
    s.trim_end_matches('.').to_ascii_lowercase()
}

fn no_records(name: &str, kind: &'static str) -> DnsError {
    DnsError::NoRecords {
        name: name.to_string(),
        kind,
    }
}

fn map_err(name: &str, kind: &'static str, e: NetError) -> DnsError {
    if e.is_nx_domain() {
        DnsError::NxDomain(name.to_string())
    } else if e.is_no_records_found() {
        no_records(name, kind)
    } else {
        DnsError::Failed {
            name: name.to_string(),
            detail: e.to_string(),
        }
    }
}
