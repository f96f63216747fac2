//! Tests of the Graph error classifier against docs/graph.md § "Errors".

use super::*;

fn body(code: &str) -> Vec<u8> {
    if code.is_empty() {
        Vec::new()
    } else {
        serde_json::to_vec(&serde_json::json!({
            "error": { "code": code, "message": "some text Postern must not read" }
        }))
        .unwrap()
    }
}

#[test]
fn the_documented_errors() {
    let doc = include_str!("../../../docs/graph.md");
    let table = doc
        .split("<!-- graph errors: checked by engine/src/graph/errors.rs -->")
        .nth(1)
        .and_then(|t| t.split("<!-- end of graph errors -->").next())
        .expect("the errors table in docs/graph.md");
    let mut rows = 0;
    for line in table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| HTTP"))
    {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let [_, status, code, route, action, summary, fix, _] = cells[..] else {
            panic!("a row of six cells: {line}");
        };
        let code = if code == "—" {
            ""
        } else {
            code.split('`').nth(1).expect("the code in backquotes")
        };
        let routes: &[Route] = match route {
            "mime" => &[Route::Mime],
            "draft" => &[Route::Draft],
            "both" => &[Route::Mime, Route::Draft],
            other => panic!("route {other:?}"),
        };
        let (action, draft) = match action {
            "draft-route" => (Action::Retry, true),
            a => (
                serde_json::from_value::<Action>(serde_json::json!(a)).expect(a),
                false,
            ),
        };
        for &route in routes {
            let outcome = if status == "network" {
                network_failure()
            } else {
                let status: u16 = status.parse().expect(status);
                classify_response(route, status, None, &body(code))
            };
            assert_eq!(
                (
                    outcome.verdict.action,
                    outcome.use_draft_route,
                    outcome.verdict.summary,
                    outcome.verdict.fix
                ),
                (action, draft, summary, fix),
                "docs/graph.md says of {status} {code:?} on {route:?}"
            );
        }
        rows += 1;
    }
    assert!(rows >= 25, "{rows} rows");
    // Every code the classifier names has a row.
    let src = include_str!("errors.rs");
    for code in src
        .split("is(\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
    {
        assert!(
            table.contains(&format!("`{code}`")),
            "{code} has no row in docs/graph.md § Errors"
        );
    }
}

#[test]
fn decisions_never_read_the_message_text() {
    let a = classify_response(
        Route::Mime,
        403,
        None,
        br#"{"error":{"code":"ErrorAccessDenied","message":"consent Authorization_RequestDenied"}}"#,
    );
    let b = classify_response(
        Route::Mime,
        403,
        None,
        br#"{"error":{"code":"ErrorAccessDenied","message":"Access to OData is disabled."}}"#,
    );
    assert_eq!(a.verdict, b.verdict);
    assert_eq!(a.verdict.fix, RBAC_FIX);
}

#[test]
fn a_code_decides_whatever_the_status() {
    let o = classify_response(Route::Mime, 400, None, &body("MailboxNotEnabledForRESTAPI"));
    assert_eq!(o.verdict.action, Action::Hold);
    let o = classify_response(Route::Draft, 400, None, &body("errorinvalidmimecontent"));
    assert_eq!(o.verdict.action, Action::FailMessage);
}

#[test]
fn retry_after_is_kept_for_retries_only() {
    let o = classify_response(
        Route::Mime,
        429,
        Some(" 37 "),
        &body("ApplicationThrottled"),
    );
    assert_eq!(o.retry_after, Some(Duration::from_secs(37)));
    let o = classify_response(Route::Mime, 429, Some("30"), &body("MailboxConcurrency"));
    assert_eq!(o.verdict.action, Action::ReduceConnections);
    assert_eq!(o.retry_after, Some(Duration::from_secs(30)));
    let o = classify_response(Route::Mime, 503, Some("5"), b"<html>busy</html>");
    assert_eq!(o.retry_after, Some(Duration::from_secs(5)));
    assert_eq!(o.error, None);
    let o = classify_response(Route::Mime, 503, Some("Wed, 21 Oct 2026 07:28:00 GMT"), b"");
    assert_eq!((o.verdict.action, o.retry_after), (Action::Retry, None));
    let o = classify_response(Route::Mime, 403, Some("30"), &body("ErrorAccessDenied"));
    assert_eq!(o.retry_after, None);
}

#[test]
fn the_error_object_is_kept_for_the_transcript() {
    let o = classify_response(Route::Mime, 403, None, &body("ErrorSendAsDenied"));
    let e = o.error.expect("parsed");
    assert_eq!(e.code, "ErrorSendAsDenied");
    assert_eq!(e.message, "some text Postern must not read");
    assert_eq!(o.status, Some(403));
    assert_eq!(
        parse_error(b"{\"error\":{}}").map(|e| e.code),
        Some(String::new())
    );
    assert_eq!(parse_error(b"not json"), None);
}
