//! Issue #13's story end to end: a tenant with Security Defaults on, where
//! SMTP sign-in is refused even with OAuth. The scanner's 25 MB scan to an
//! external recipient is kept and held with a fix that points to Graph;
//! the admin switches `postern serve` to Graph mode (the keys the README
//! writes), retries, and the same scan arrives through Graph,
//! byte-identical, without the tenant's Security Defaults being touched.

mod support;

use postern_testkit::{Fault, Stage};
use support::graph::{scan_message, send_raw, sha256_hex, GraphUpstream};
use support::mail::field;
use support::*;

const CAROL: &str = "carol@fabrikam.com";

#[tokio::test(flavor = "multi_thread")]
async fn a_security_defaults_tenant_gets_its_scan_through_graph() {
    let g = GraphUpstream::start(&["Mail.Send", "Mail.ReadWrite"]).await;
    g.up.exchange.push_fault(Fault::Reply {
        stage: Stage::Auth,
        reply: "535 5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy. Contact your administrator.".into(),
    });
    // Client submission, as Postern is set up by default.
    let mut p = Postern::start(&g.up).await;
    let (message, scan) = scan_message("security-defaults", 25 * 1024 * 1024);
    let reply = send_raw(&p, &message, &[CAROL]);
    assert!(reply.starts_with("250"), "{reply}");
    drop(message);
    let q = p.wait_all(1, "held");
    assert!(field(&q[0], "last_reply").contains("5.7.139"), "{q:#?}");
    let fix = field(&q[0], "fix");
    assert!(fix.starts_with("Keep Security Defaults on"), "{fix}");
    assert!(fix.contains("upstream.mode = \"graph\""), "{fix}");

    // The admin follows the fix: Graph mode, nothing else changed.
    p.stop();
    let mut c: toml::Table = p.config_text().parse().unwrap();
    set(&mut c, "upstream.mode", "graph");
    c["upstream"].as_table_mut().unwrap().remove("host");
    c["upstream"].as_table_mut().unwrap().remove("port");
    set(&mut c, "graph.endpoint", g.graph.endpoint());
    std::fs::write(&p.config_path, toml::to_string(&c).unwrap()).unwrap();
    p.spawn();
    let out = p.cli(&["queue", "retry", "--all"]);
    assert!(out.status.success(), "{}", text(&out));

    let got = g.graph.wait_for_delivered(1, PATIENCE).await;
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.route, Some(postern_testkit::Route::Draft));
    assert_eq!(m.recipients(), [CAROL]);
    assert_eq!(m.attachments.len(), 1);
    assert_eq!(m.attachments[0].sha256, sha256_hex(&scan));
    let q = p.wait_all(1, "sent");
    assert!(field(&q[0], "last_reply").starts_with("202"), "{q:#?}");
    assert_eq!(g.up.exchange.stats().messages, 0);
}
