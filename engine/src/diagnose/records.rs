//! The domain's DNS records as Microsoft 365 wants them: MX to the
//! tenant's `*.mail.protection.outlook.com` endpoint, SPF including
//! `spf.protection.outlook.com`, a DMARC policy, and the two DKIM selector
//! CNAMEs.

use super::{Check, Context};
use crate::config::UpstreamMode;
use crate::dns::{is_microsoft_endpoint, DnsError, Resolver};

/// What every Exchange Online tenant's MX host ends with.
pub const EXO_MX_SUFFIX: &str = ".mail.protection.outlook.com";
/// What an SPF record includes to cover Exchange Online's senders.
pub const EXO_SPF_INCLUDE: &str = "include:spf.protection.outlook.com";
/// Microsoft 365's DKIM selectors (CNAMEs to the tenant's keys).
const DKIM_SELECTORS: [&str; 2] = ["selector1", "selector2"];

pub(crate) async fn check(cx: &mut Context<'_>) {
    let domain = cx.config.upstream.effective_domain();
    let titles = [
        ("dns.mx", format!("MX record of {domain}")),
        ("dns.spf", format!("SPF record of {domain}")),
        ("dns.dmarc", format!("DMARC record _dmarc.{domain}")),
        ("dns.dkim", format!("DKIM selectors of {domain}")),
    ];
    if domain.is_empty() {
        for (id, _) in titles {
            cx.push(Check::skip(
                id,
                "DNS records",
                "no domain: set upstream.mailbox or upstream.domain",
            ));
        }
        return;
    }
    let Some(resolver) = cx.resolver.clone() else {
        let why = cx.dns_error.clone().unwrap_or_default();
        let [(id, title), rest @ ..] = titles;
        cx.push(Check::fail(
            id,
            title,
            format!("cannot set up DNS resolution: {why}"),
            "Check dns.servers, or the system's resolver (/etc/resolv.conf).",
        ));
        for (id, title) in rest {
            cx.push(Check::skip(id, title, "DNS resolution is not available"));
        }
        return;
    };
    let [(mx_id, mx_title), (spf_id, spf_title), (dmarc_id, dmarc_title), (dkim_id, dkim_title)] =
        titles;
    let mx = mx(cx, &resolver, &domain, mx_id, mx_title).await;
    cx.push(mx);
    let spf = spf(&resolver, &domain, spf_id, spf_title).await;
    cx.push(spf);
    if cx.config.upstream.mode != UpstreamMode::Submission {
        cx.push(Check::skip(
            "dns.spf_ip",
            "SPF covers this office's public IP address",
            "cannot know this machine's public IP offline; make sure the SPF record (or the connector) covers the address your office sends from",
        ));
    }
    let dmarc = dmarc(&resolver, &domain, dmarc_id, dmarc_title).await;
    cx.push(dmarc);
    let dkim = dkim(&resolver, &domain, dkim_id, dkim_title).await;
    cx.push(dkim);
}

async fn mx(
    cx: &mut Context<'_>,
    resolver: &Resolver,
    domain: &str,
    id: &'static str,
    title: String,
) -> Check {
    let endpoint = format!("{}{EXO_MX_SUFFIX}", domain.replace('.', "-"));
    let fix = format!(
        "Point the MX record of {domain} at your tenant's endpoint ({endpoint}, shown in the Microsoft 365 admin center under Settings → Domains); if a filtering service receives your mail on purpose, set upstream.host to the tenant endpoint for relay or Direct Send."
    );
    let records = match resolver.mx(domain).await {
        Ok(r) => r,
        Err(e) => return lookup_failed(id, title, &e, &fix),
    };
    let best = &records[0];
    let list: Vec<String> = records
        .iter()
        .map(|r| format!("{} (preference {})", r.exchange, r.preference))
        .collect();
    if is_microsoft_endpoint(&best.exchange) {
        cx.mx_target = Some(best.exchange.clone());
        Check::ok(id, title, format!("points to {}", list.join(", ")))
    } else {
        Check::fail(
            id,
            title,
            format!(
                "points to {}, not to Exchange Online (*{EXO_MX_SUFFIX})",
                list.join(", ")
            ),
            fix,
        )
    }
}

async fn spf(resolver: &Resolver, domain: &str, id: &'static str, title: String) -> Check {
    let fix = format!(
        "Publish one TXT record on {domain}: v=spf1 {EXO_SPF_INCLUDE} -all (keep any other senders you have, before -all)."
    );
    let txt = match resolver.txt(domain).await {
        Ok(t) => t,
        Err(e @ (DnsError::NoRecords { .. } | DnsError::NxDomain(_))) => {
            return Check::warn(id, title, format!("no SPF record ({e})"), fix)
        }
        Err(e) => return lookup_failed(id, title, &e, &fix),
    };
    let spf: Vec<&String> = txt
        .iter()
        .filter(|t| t.to_ascii_lowercase().starts_with("v=spf1"))
        .collect();
    match spf.as_slice() {
        [] => Check::warn(
            id,
            title,
            "no SPF record (no TXT record starts with v=spf1)",
            fix,
        ),
        [one]
            if one
                .to_ascii_lowercase()
                .split_whitespace()
                .any(|t| t.trim_start_matches(['+', '?', '~']) == EXO_SPF_INCLUDE) =>
        {
            Check::ok(id, title, (*one).clone())
        }
        [one] => Check::warn(
            id,
            title,
            format!("\"{one}\" does not include spf.protection.outlook.com"),
            format!(
                "Add {EXO_SPF_INCLUDE} to the SPF record of {domain}, before its all mechanism."
            ),
        ),
        many => Check::warn(
            id,
            title,
            format!(
                "{} SPF records, which makes SPF fail (permerror): {}",
                many.len(),
                many.iter()
                    .map(|s| format!("\"{s}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            format!("Merge them into one TXT record that includes {EXO_SPF_INCLUDE}."),
        ),
    }
}

async fn dmarc(resolver: &Resolver, domain: &str, id: &'static str, title: String) -> Check {
    let name = format!("_dmarc.{domain}");
    let fix = format!(
        "Publish a TXT record on {name}, e.g. \"v=DMARC1; p=none; rua=mailto:dmarc@{domain}\", and tighten p= once reports look clean."
    );
    match resolver.txt(&name).await {
        Ok(txt) => match txt
            .iter()
            .find(|t| t.to_ascii_lowercase().starts_with("v=dmarc1"))
        {
            Some(rec) => Check::ok(id, title, rec.clone()),
            None => Check::warn(id, title, "no TXT record starting with v=DMARC1", fix),
        },
        Err(e @ (DnsError::NoRecords { .. } | DnsError::NxDomain(_))) => {
            Check::warn(id, title, format!("no DMARC record ({e})"), fix)
        }
        Err(e) => lookup_failed(id, title, &e, &fix),
    }
}

async fn dkim(resolver: &Resolver, domain: &str, id: &'static str, title: String) -> Check {
    let fix = "In the Microsoft Defender portal (Email & collaboration → Policies → Email authentication settings → DKIM) publish the two CNAME records it shows for the domain, then enable DKIM signing.";
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for selector in DKIM_SELECTORS {
        let name = format!("{selector}._domainkey.{domain}");
        match resolver.cname(&name).await {
            Ok(Some(target)) => found.push(format!("{selector} → {target}")),
            Ok(None) | Err(DnsError::NoRecords { .. } | DnsError::NxDomain(_)) => {
                missing.push(name)
            }
            Err(e) => return lookup_failed(id, title, &e, fix),
        }
    }
    if missing.is_empty() {
        Check::ok(id, title, found.join(", "))
    } else {
        Check::warn(
            id,
            title,
            format!("no CNAME for {}", missing.join(" or ")),
            fix,
        )
    }
}

/// A lookup that did not find the record (a fail for MX, whose absence
/// stops mail) or could not be made at all.
fn lookup_failed(id: &'static str, title: String, e: &DnsError, fix: &str) -> Check {
    match e {
        DnsError::NoRecords { .. } | DnsError::NxDomain(_) => {
            Check::fail(id, title, e.to_string(), fix)
        }
        DnsError::Failed { .. } => Check::fail(
            id,
            title,
            e.to_string(),
            "Check that this machine can reach its DNS servers (dns.servers, or /etc/resolv.conf).",
        ),
    }
}
