//! The verdicts of Graph mode's permission and mailbox checks, from what
//! the token lists and what reading the Drafts folder showed.

use super::*;
use crate::diagnose::Verdict;

const MB: &str = "scanner@contoso.com";

fn perms(p: &[&str]) -> Result<Vec<String>, String> {
    Ok(p.iter().map(|s| s.to_string()).collect())
}

fn refused(status: u16, code: &str) -> Probe {
    let o = classify_response(
        Route::Draft,
        status,
        None,
        format!(r#"{{"error":{{"code":"{code}","message":"m"}}}}"#).as_bytes(),
    );
    Probe::Refused {
        status,
        code: code.into(),
        action: o.verdict.action,
        summary: o.verdict.summary.into(),
        fix: o.verdict.fix.into(),
    }
}

fn tags(c: &[Check; 3]) -> [Verdict; 3] {
    [c[0].verdict, c[1].verdict, c[2].verdict]
}

#[test]
fn all_granted_and_the_mailbox_answers() {
    let c = verdicts(
        perms(&["Mail.Send", "Mail.ReadWrite"]),
        false,
        Some(&Probe::Ok),
        MB,
    );
    assert_eq!(tags(&c), [Verdict::Ok; 3]);
    assert!(
        c[0].found.contains("roles claim holds Mail.Send"),
        "{:?}",
        c[0]
    );
}

#[test]
fn no_mail_send_gives_the_application_consent() {
    let c = verdicts(perms(&["Mail.ReadWrite"]), false, Some(&Probe::Ok), MB);
    assert_eq!(c[0].verdict, Verdict::Fail);
    assert!(
        c[0].fix.contains("API permissions → Add a permission → Microsoft Graph → Application permissions → Mail.Send → Grant admin consent"),
        "{}",
        c[0].fix
    );
    // Delegated: the scp claim and delegated permissions.
    let c = verdicts(perms(&["offline_access"]), true, Some(&Probe::Ok), MB);
    assert!(c[0].found.contains("scp"), "{}", c[0].found);
    assert!(
        c[0].fix.contains("Delegated permissions → Mail.Send"),
        "{}",
        c[0].fix
    );
}

#[test]
fn no_mail_readwrite_warns_and_the_mailbox_cannot_be_checked() {
    let c = verdicts(
        perms(&["Mail.Send"]),
        false,
        Some(&refused(403, "ErrorAccessDenied")),
        MB,
    );
    assert_eq!(tags(&c), [Verdict::Ok, Verdict::Warn, Verdict::Skip]);
    assert!(c[1].found.contains("over about 3 MB"), "{}", c[1].found);
    assert!(
        c[1].fix
            .contains("Application permissions → Mail.ReadWrite"),
        "{}",
        c[1].fix
    );
    assert!(
        c[2].found.contains("could not be checked without sending"),
        "{}",
        c[2].found
    );
}

#[test]
fn rbac_grants_the_token_does_not_show() {
    // No roles at all, yet the Drafts folder answered: RBAC for Applications.
    let c = verdicts(perms(&[]), false, Some(&Probe::Ok), MB);
    assert_eq!(tags(&c), [Verdict::Warn, Verdict::Ok, Verdict::Ok]);
    assert!(
        c[0].fix.contains("Test-ServicePrincipalAuthorization"),
        "{}",
        c[0].fix
    );
}

#[test]
fn mailbox_errors_are_explained_as_delivery_explains_them() {
    let all = perms(&["Mail.Send", "Mail.ReadWrite"]);
    let c = verdicts(
        all.clone(),
        false,
        Some(&refused(404, "ErrorInvalidUser")),
        MB,
    );
    assert_eq!(c[2].verdict, Verdict::Fail);
    assert!(
        c[2].fix.contains("existing Exchange Online mailbox"),
        "{}",
        c[2].fix
    );
    let c = verdicts(
        all.clone(),
        false,
        Some(&refused(404, "MailboxNotEnabledForRESTAPI")),
        MB,
    );
    assert!(c[2].fix.contains("license"), "{}", c[2].fix);
    let c = verdicts(
        all.clone(),
        false,
        Some(&refused(403, "ErrorAccessDenied")),
        MB,
    );
    assert_eq!(c[2].verdict, Verdict::Fail);
    assert!(
        c[2].fix.contains("New-ManagementRoleAssignment"),
        "{}",
        c[2].fix
    );
    let c = verdicts(
        all.clone(),
        false,
        Some(&refused(503, "ServiceUnavailable")),
        MB,
    );
    assert_eq!(c[2].verdict, Verdict::Warn);
    let c = verdicts(all, false, None, MB);
    assert_eq!(c[2].verdict, Verdict::Skip);
}

#[test]
fn a_token_that_is_not_a_jwt_skips_the_permissions() {
    let c = verdicts(Err("not a JWT".into()), false, Some(&Probe::Ok), MB);
    assert_eq!(tags(&c), [Verdict::Skip, Verdict::Skip, Verdict::Ok]);
}

#[test]
fn an_app_token_listing_nothing_may_be_rbac_only_so_it_warns() {
    // RBAC for Applications without tenant-wide consent: an empty roles
    // claim, and no Mail.ReadWrite to probe the mailbox with.
    let c = verdicts(
        perms(&[]),
        false,
        Some(&refused(403, "ErrorAccessDenied")),
        MB,
    );
    assert_eq!(c[0].verdict, Verdict::Warn, "{:?}", c[0]);
    assert!(
        c[0].fix.contains("Test-ServicePrincipalAuthorization"),
        "{:?}",
        c[0]
    );
    // A delegated token listing nothing is simply missing the consent.
    let c = verdicts(
        perms(&[]),
        true,
        Some(&refused(403, "ErrorAccessDenied")),
        MB,
    );
    assert_eq!(c[0].verdict, Verdict::Fail, "{:?}", c[0]);
}
