//! The resolver and [`Endpoints`] against the testkit's fake DNS server.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use postern_testkit::{FakeDns, Zone};

use super::*;

const MS: &str = "contoso-com.mail.protection.outlook.com";

fn resolver(dns: &FakeDns) -> Resolver {
    Resolver::new(&DnsConfig {
        servers: vec![dns.addr()],
    })
    .unwrap()
}

#[tokio::test]
async fn record_kinds() {
    let dns = FakeDns::start(
        Zone::new()
            .mx("Contoso.com.", 20, "Backup.Contoso.com.")
            .mx("contoso.com", 10, MS)
            .txt(
                "contoso.com",
                "v=spf1 include:spf.protection.outlook.com -all",
            )
            .txt("long.contoso.com", &"x".repeat(300))
            .cname("autodiscover.contoso.com", "autodiscover.outlook.com")
            .a(MS, Ipv4Addr::new(127, 0, 0, 1)),
    )
    .await;
    let r = resolver(&dns);

    let mx = r.mx("contoso.com").await.unwrap();
    assert_eq!(
        mx,
        vec![
            MxRecord {
                preference: 10,
                exchange: MS.into(),
                ttl: Duration::from_secs(300)
            },
            MxRecord {
                preference: 20,
                exchange: "backup.contoso.com".into(),
                ttl: Duration::from_secs(300)
            },
        ]
    );
    assert_eq!(
        r.txt("contoso.com").await.unwrap(),
        vec!["v=spf1 include:spf.protection.outlook.com -all"]
    );
    // A long TXT goes as several strings and comes back joined.
    assert_eq!(
        r.txt("long.contoso.com").await.unwrap(),
        vec!["x".repeat(300)]
    );
    assert_eq!(
        r.cname("autodiscover.contoso.com")
            .await
            .unwrap()
            .as_deref(),
        Some("autodiscover.outlook.com")
    );
    assert_eq!(r.cname("contoso.com").await.unwrap(), None);
    // A only (the fake never has AAAA): the address, no error.
    assert_eq!(
        r.ips(MS).await.unwrap(),
        vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]
    );
}

#[tokio::test]
async fn missing_names_and_records() {
    let dns = FakeDns::start(Zone::new().txt("contoso.com", "hello")).await;
    let r = resolver(&dns);
    assert!(matches!(
        r.mx("contoso.com").await,
        Err(DnsError::NoRecords { kind: "MX", .. })
    ));
    let e = r.mx("nowhere.example").await.unwrap_err();
    assert!(
        matches!(&e, DnsError::NxDomain(n) if n == "nowhere.example"),
        "{e:?}"
    );
    assert_eq!(e.to_string(), "nowhere.example does not exist (NXDOMAIN)");
    assert!(!e.is_transient());
    assert!(r.ips("contoso.com").await.is_err());
    assert!(matches!(
        r.ips("nowhere.example").await,
        Err(DnsError::NxDomain(_))
    ));
    assert!(matches!(
        r.txt("nowhere.example").await,
        Err(DnsError::NxDomain(_))
    ));
}

#[tokio::test]
async fn literals_and_localhost_never_ask_dns() {
    let dns = FakeDns::start(Zone::new()).await;
    let r = resolver(&dns);
    assert_eq!(
        r.ips("192.0.2.7").await.unwrap(),
        vec!["192.0.2.7".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(
        r.ips("[::1]").await.unwrap(),
        vec!["::1".parse::<IpAddr>().unwrap()]
    );
    let local = r.ips("localhost").await.unwrap();
    assert!(
        local.iter().all(|ip| ip.is_loopback()) && !local.is_empty(),
        "{local:?}"
    );
    assert!(dns.queries().is_empty(), "{:?}", dns.queries());
}

#[tokio::test]
async fn unanswered_server_is_a_transient_failure() {
    // A bound UDP socket that never answers.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // Keep the test short: one try with a short timeout.
    let mut builder = TokioResolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![name_server(&silent.local_addr().unwrap())]),
        TokioRuntimeProvider::default(),
    );
    builder.options_mut().timeout = Duration::from_millis(200);
    builder.options_mut().attempts = 1;
    let r = Resolver {
        inner: builder.build().unwrap(),
        hosts: Arc::new(Hosts::default()),
    };
    let e = r.mx("contoso.com").await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("DNS lookup for contoso.com failed"),
        "{e}"
    );
}

#[tokio::test]
async fn endpoints_put_microsoft_first_then_preference() {
    let dns = FakeDns::start(
        Zone::new()
            .mx("contoso.com", 1, "relay.contoso.com")
            .mx(
                "contoso.com",
                30,
                "other-tenant.mail.protection.outlook.com",
            )
            .mx("contoso.com", 5, "backup.contoso.com")
            .mx("contoso.com", 10, MS)
            .mx("contoso.com", 10, "MS-Dup.Mail.Protection.Outlook.com")
            .mx("contoso.com", 5, "backup.contoso.com"),
    )
    .await;
    let e = Endpoints::new(resolver(&dns), "contoso.com".into());
    assert_eq!(
        e.hosts().await.unwrap(),
        vec![
            MS,
            "ms-dup.mail.protection.outlook.com",
            "other-tenant.mail.protection.outlook.com",
            "relay.contoso.com",
            "backup.contoso.com",
        ]
    );
}

#[test]
fn null_mx_is_dropped() {
    let rec = |p, h: &str| MxRecord {
        preference: p,
        exchange: h.into(),
        ttl: Duration::ZERO,
    };
    assert!(order(vec![rec(0, "")]).is_empty());
    assert_eq!(
        order(vec![rec(0, ""), rec(5, "a.example")]),
        vec!["a.example"]
    );
}

#[tokio::test]
async fn endpoints_are_cached_for_the_ttl_then_resolved_again() {
    let dns = FakeDns::start(Zone::new().ttl(300).mx("contoso.com", 10, MS)).await;
    let e = Endpoints::new(resolver(&dns), "contoso.com".into());
    let t0 = Instant::now();
    assert_eq!(e.hosts_at(t0).await.unwrap(), vec![MS]);
    assert_eq!(dns.query_count("contoso.com", "MX"), 1);

    // The tenant moves; within the TTL the cached answer stands, unasked.
    dns.set_mx(
        "contoso.com",
        &[(10, "fabrikam-com.mail.protection.outlook.com")],
    );
    let cached = e.hosts_at(t0 + Duration::from_secs(299)).await.unwrap();
    assert_eq!(cached, vec![MS]);
    assert_eq!(dns.query_count("contoso.com", "MX"), 1);

    // Once the TTL is over, it is asked again and the new endpoint is used.
    let fresh = e.hosts_at(t0 + Duration::from_secs(300)).await.unwrap();
    assert_eq!(fresh, vec!["fabrikam-com.mail.protection.outlook.com"]);
    assert_eq!(dns.query_count("contoso.com", "MX"), 2);
}

#[tokio::test]
async fn endpoints_follow_a_short_ttl_and_failures_are_not_cached() {
    let dns = FakeDns::start(Zone::new().ttl(60)).await;
    let e = Endpoints::new(resolver(&dns), "contoso.com".into());
    let t0 = Instant::now();
    assert!(matches!(e.hosts_at(t0).await, Err(DnsError::NxDomain(_))));
    // Not cached: the record appearing is seen at once.
    dns.set_mx("contoso.com", &[(10, MS)]);
    assert_eq!(e.hosts_at(t0).await.unwrap(), vec![MS]);
    // TTL 60: expired after a minute (the zone's TTL is what the records carry).
    dns.set_mx("contoso.com", &[(10, "x.mail.protection.outlook.com")]);
    assert_eq!(
        e.hosts_at(t0 + Duration::from_secs(59)).await.unwrap(),
        vec![MS]
    );
    assert_eq!(
        e.hosts_at(t0 + Duration::from_secs(60)).await.unwrap(),
        vec!["x.mail.protection.outlook.com"]
    );
}
