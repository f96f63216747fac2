//! The one place Postern asks DNS: the tenant's MX endpoints for connector
//! relay and Direct Send, the addresses of whatever host it connects to, and
//! the TXT/CNAME look-ups `postern diagnose` makes.
//!
//! Built on hickory-resolver, asking the servers in `[dns] servers` (a
//! split-horizon office DNS, or a test's fake) or, when that is empty, the
//! system's configuration (resolv.conf). The hosts file is read first for
//! addresses, and "localhost" is always loopback (RFC 6761), as the system's
//! own resolver would do.
//!
//! hickory's response cache is turned off: the one thing worth caching, the
//! tenant's MX endpoints, is cached by [`Endpoints`] for the records' TTL,
//! on tokio's clock, where a test can see it expire.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::op::Query;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{Hosts, TokioResolver};
use tokio::time::Instant;

use crate::config::DnsConfig;

/// How long one DNS server may take to answer one query.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Tries per query (per server) before the look-up fails.
const QUERY_ATTEMPTS: usize = 2;
/// The suffix of Exchange Online's inbound endpoints (the tenant MX).
pub const MICROSOFT_MX_SUFFIX: &str = ".mail.protection.outlook.com";

/// A DNS client; cheap to clone (clones share the connections).
#[derive(Clone)]
pub struct Resolver {
    inner: TokioResolver,
    /// The hosts file, consulted before DNS for addresses.
    hosts: Arc<Hosts>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

/// One MX record.
#[derive(Debug, Clone, PartialEq)]
pub struct MxRecord {
    pub preference: u16,
    /// The mail server's name: no trailing dot, lowercase.
    pub exchange: String,
    pub ttl: Duration,
}

/// Why a look-up gave no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DnsError {
    /// The name exists but has no record of this kind.
    #[error("{name} has no {kind} record")]
    NoRecords { name: String, kind: &'static str },
    #[error("{0} does not exist (NXDOMAIN)")]
    NxDomain(String),
    /// The server did not answer, refused, or the configuration is unusable.
    #[error("DNS lookup for {name} failed: {detail}")]
    Failed { name: String, detail: String },
}

impl DnsError {
    /// True when asking again later may give another answer without anyone
    /// changing DNS: the server did not answer or failed.
    pub fn is_transient(&self) -> bool {
        matches!(self, DnsError::Failed { .. })
    }
}

impl Resolver {
    /// `servers` empty = the system's configuration (resolv.conf, hosts file).
    pub fn new(cfg: &DnsConfig) -> Result<Resolver, DnsError> {
        let mut builder = if cfg.servers.is_empty() {
            TokioResolver::builder_tokio().map_err(|e| DnsError::Failed {
                name: "the system's DNS configuration".into(),
                detail: e.to_string(),
            })?
        } else {
            let servers = cfg.servers.iter().map(name_server).collect();
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(servers),
                TokioRuntimeProvider::default(),
            )
        };
        let opts = builder.options_mut();
        opts.cache_size = 0;
        opts.timeout = QUERY_TIMEOUT;
        opts.attempts = QUERY_ATTEMPTS;
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        // Read here, once, and consulted by `ips` for both families at once.
        opts.use_hosts_file = ResolveHosts::Never;
        let inner = builder.build().map_err(|e| DnsError::Failed {
            name: "the DNS configuration".into(),
            detail: e.to_string(),
        })?;
        Ok(Resolver {
            inner,
            hosts: Arc::new(Hosts::from_system().unwrap_or_default()),
        })
    }

    /// MX records sorted by preference (lowest first).
    pub async fn mx(&self, domain: &str) -> Result<Vec<MxRecord>, DnsError> {
        let lookup = self.lookup(domain, RecordType::MX, "MX").await?;
        let mut records: Vec<MxRecord> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => Some(MxRecord {
                    preference: mx.preference,
                    exchange: plain(&mx.exchange),
                    ttl: Duration::from_secs(r.ttl.into()),
                }),
                _ => None,
            })
            .collect();
        if records.is_empty() {
            return Err(no_records(domain, "MX"));
        }
        records.sort_by_key(|r| r.preference);
        Ok(records)
    }

    /// Each TXT record's strings joined.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let lookup = self.lookup(name, RecordType::TXT, "TXT").await?;
        let texts: Vec<String> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|s| String::from_utf8_lossy(s))
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect();
        if texts.is_empty() {
            return Err(no_records(name, "TXT"));
        }
        Ok(texts)
    }

    /// The name's CNAME target (no trailing dot, lowercase), `None` when it
    /// has none.
    pub async fn cname(&self, name: &str) -> Result<Option<String>, DnsError> {
        let lookup = match self.lookup(name, RecordType::CNAME, "CNAME").await {
            Ok(l) => l,
            Err(DnsError::NoRecords { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(lookup.answers().iter().find_map(|r| match &r.data {
            RData::CNAME(c) => Some(plain(&c.0)),
            _ => None,
        }))
    }

    /// A + AAAA, IPv4 first. An IP literal returns itself; the hosts file
    /// answers before DNS; "localhost" is loopback.
    pub async fn ips(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        let host = host.trim_end_matches('.');
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let from_hosts = self.hosts_file_ips(host);
        if !from_hosts.is_empty() {
            return Ok(from_hosts);
        }
        let lower = host.to_ascii_lowercase();
        if lower == "localhost" || lower.ends_with(".localhost") {
            return Ok(vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ]);
        }
        let name = fqdn(host)?;
        let ips: Vec<IpAddr> = match self.inner.lookup_ip(name).await {
            Ok(found) => found.iter().collect(),
            Err(e) => return Err(from_net(host, "A or AAAA", &e)),
        };
        if ips.is_empty() {
            return Err(no_records(host, "A or AAAA"));
        }
        Ok(ips)
    }

    fn hosts_file_ips(&self, host: &str) -> Vec<IpAddr> {
        let Ok(name) = fqdn(host) else {
            return vec![];
        };
        [RecordType::A, RecordType::AAAA]
            .into_iter()
            .filter_map(|t| {
                self.hosts
                    .lookup_static_host(&Query::query(name.clone(), t))
            })
            .flat_map(|l| {
                l.answers()
                    .iter()
                    .filter_map(|r| r.data.ip_addr())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    async fn lookup(
        &self,
        name: &str,
        kind: RecordType,
        kind_name: &'static str,
    ) -> Result<hickory_resolver::lookup::Lookup, DnsError> {
        let fq = fqdn(name)?;
        self.inner
            .lookup(fq, kind)
            .await
            .map_err(|e| from_net(name, kind_name, &e))
    }
}

/// A configured server, asked over UDP (TCP when an answer is truncated).
fn name_server(addr: &SocketAddr) -> NameServerConfig {
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
}

/// The name as asked, absolute: "contoso.com" never becomes
/// "contoso.com.office.local" through a search list.
fn fqdn(name: &str) -> Result<Name, DnsError> {
    let mut n = Name::from_utf8(name.trim_end_matches('.')).map_err(|e| DnsError::Failed {
        name: name.to_string(),
        detail: format!("not a valid DNS name: {e}"),
    })?;
    n.set_fqdn(true);
    Ok(n)
}

/// Lowercase, without the trailing dot.
fn plain(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

fn no_records(name: &str, kind: &'static str) -> DnsError {
    DnsError::NoRecords {
        name: name.to_string(),
        kind,
    }
}

fn from_net(name: &str, kind: &'static str, e: &NetError) -> DnsError {
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

/// True for Exchange Online's inbound endpoints (`*.mail.protection.outlook.com`).
pub fn is_microsoft_endpoint(host: &str) -> bool {
    host.to_ascii_lowercase().ends_with(MICROSOFT_MX_SUFFIX)
}

/// The tenant's delivery endpoints for relay / Direct Send, from its MX:
/// Microsoft endpoints (`*.mail.protection.outlook.com`) first, then the
/// rest by preference; cached until the shortest TTL expires (re-resolved
/// after). A failed look-up is not cached.
pub struct Endpoints {
    resolver: Resolver,
    domain: String,
    /// Held across the look-up, so lanes asking at once make one query.
    cache: tokio::sync::Mutex<Option<Cached>>,
}

struct Cached {
    hosts: Vec<String>,
    expires: Instant,
}

impl Endpoints {
    pub fn new(resolver: Resolver, domain: String) -> Self {
        Endpoints {
            resolver,
            domain,
            cache: tokio::sync::Mutex::new(None),
        }
    }

    /// The domain whose MX this follows.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Host names to try, in order.
    pub async fn hosts(&self) -> Result<Vec<String>, DnsError> {
        self.hosts_at(Instant::now()).await
    }

    /// [`hosts`](Self::hosts) as seen at `now` (the tests' clock).
    async fn hosts_at(&self, now: Instant) -> Result<Vec<String>, DnsError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref().filter(|c| now < c.expires) {
            return Ok(c.hosts.clone());
        }
        let records = self.resolver.mx(&self.domain).await?;
        let ttl = records.iter().map(|r| r.ttl).min().unwrap_or_default();
        let hosts = order(records);
        if hosts.is_empty() {
            // Only a "null MX" (RFC 7505: "."): the domain takes no mail.
            return Err(no_records(&self.domain, "MX"));
        }
        *cache = Some(Cached {
            hosts: hosts.clone(),
            expires: now + ttl,
        });
        Ok(hosts)
    }
}

/// Microsoft endpoints first, then by preference (stable: equal preferences
/// keep DNS's order); duplicates and the null MX dropped.
fn order(mut records: Vec<MxRecord>) -> Vec<String> {
    records.sort_by_key(|r| (!is_microsoft_endpoint(&r.exchange), r.preference));
    let mut hosts: Vec<String> = Vec::with_capacity(records.len());
    for r in records {
        if !r.exchange.is_empty() && !hosts.contains(&r.exchange) {
            hosts.push(r.exchange);
        }
    }
    hosts
}

#[cfg(test)]
mod tests;
