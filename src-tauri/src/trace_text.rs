//! How the CLI words the tracker's results: the queue's TRACE column,
//! each recipient's outcome in `queue show`, and the Tracking line of
//! `postern status`.

use postern_engine::spool::{MessageInfo, Outcome, Recipient};
use serde_json::Value;

/// The queue's TRACE column: how the recipients Microsoft took fared
/// ("2 delivered, 1 bounced"); "" when nothing is tracked.
pub fn trace_mark(m: &MessageInfo) -> String {
    let order = [
        Outcome::Bounced,
        Outcome::Quarantined,
        Outcome::Spam,
        Outcome::Delivered,
        Outcome::Pending,
        Outcome::Unknown,
    ];
    let outcomes: Vec<Outcome> = m
        .status
        .recipients
        .iter()
        .filter_map(|r| r.trace.as_ref().map(|t| t.outcome))
        .collect();
    order
        .iter()
        .filter_map(|o| {
            let n = outcomes.iter().filter(|x| *x == o).count();
            (n > 0).then(|| format!("{n} {o}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The lines under one recipient in `queue show`: what the trace says.
pub fn trace_lines(r: &Recipient) -> Vec<String> {
    let Some(t) = &r.trace else { return Vec::new() };
    let mut out = vec![match (t.outcome, &t.status) {
        (Outcome::Pending, None) => {
            "trace     pending: not in Microsoft's message trace yet".to_string()
        }
        (o, Some(s)) => format!("trace     {o} (the trace says {s})"),
        (o, None) => format!("trace     {o}"),
    }];
    if let Some(reason) = [t.code.as_deref(), t.diagnostic.as_deref()]
        .into_iter()
        .flatten()
        .reduce(|_, d| d)
    {
        let code = t.code.as_deref().filter(|c| !reason.contains(*c));
        out.push(match code {
            Some(c) => format!("reason    {c} {reason}"),
            None => format!("reason    {reason}"),
        });
    }
    if let Some(s) = t
        .summary
        .as_deref()
        .filter(|_| t.outcome != Outcome::Pending || t.status.is_some())
    {
        out.push(format!("meaning   {s}"));
    }
    if let Some(f) = t.fix.as_deref().filter(|f| !f.is_empty()) {
        out.push(format!("fix       {f}"));
    }
    out
}

/// `postern status`'s Tracking line(s), from the status JSON.
pub fn tracking_lines(v: &Value, now_ms: u64) -> Vec<String> {
    let t = &v["tracking"];
    let Some(state) = t["state"].as_str() else {
        return Vec::new();
    };
    let when = |k: &str| {
        t[k].as_u64().map(|ms| {
            let secs = (ms as i64 - now_ms as i64) / 1000;
            if secs >= 0 {
                format!(
                    "in {}",
                    humantime::format_duration(std::time::Duration::from_secs(secs as u64))
                )
            } else {
                format!(
                    "{} ago",
                    humantime::format_duration(std::time::Duration::from_secs((-secs) as u64))
                )
            }
        })
    };
    let mut first = format!("Tracking  {state}");
    if state != "off" && state != "unavailable" {
        first.push_str(&format!(", {} message(s) followed", t["tracked"]));
        if let Some(l) = when("last_poll") {
            first.push_str(&format!(", last poll {l}"));
        }
        if let Some(n) = when("next_poll") {
            first.push_str(&format!(", next {n}"));
        }
    }
    let mut out = vec![first];
    if let Some(r) = t["reason"].as_str() {
        out.push(format!("          {r}"));
    }
    if let Some(f) = t["fix"].as_str() {
        out.push(format!("Fix       {f}"));
    }
    out
}
