//! The details of a failed recipient, the permission both endpoints need,
//! the details' rate limit, and faults on both.

use super::*;

#[tokio::test]
async fn details_of_a_failed_recipient_carry_the_ndr_reason() {
    let env = start().await;
    env.send_mime(USER, SCAN).await;
    // Outcomes apply to rows already there.
    env.graph
        .set_trace_outcome("b@fabrikam.com", TraceOutcome::failed("5.1.10"));
    env.graph
        .set_trace_outcome("hidden@fabrikam.com", TraceOutcome::FilteredAsSpam);
    let (_, body) = env.list(&window(), None).await;
    assert_eq!(
        column(&body, "status"),
        ["delivered", "failed", "filteredAsSpam"]
    );
    let id = body["value"][0]["id"].as_str().unwrap().to_string();

    let (status, body) = env.details(&id, "b@fabrikam.com").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(column(&body, "event"), ["Receive", "Fail"]);
    let fail = &body["value"][1];
    assert_eq!(
        fail["description"],
        "Reason: [{LED=550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup};{MSG=};{FQDN=};{IP=};{LRT=}]. OriginalClientIP [127.0.0.1]"
    );
    assert_eq!(fail["data"], Value::Null);
    OffsetDateTime::parse(fail["dateTime"].as_str().unwrap(), &Rfc3339).unwrap();

    let (_, body) = env.details(&id, "A@fabrikam.com").await;
    assert_eq!(column(&body, "event"), ["Receive", "Deliver"]);
    // Percent-encoded parenthesis and quotes.
    let url = format!(
        "{}/{id}/getDetailsByRecipient%28recipientAddress%3D%27hidden%40fabrikam.com%27%29",
        env.traces()
    );
    let (_, body) = env.get(&url).await;
    assert_eq!(column(&body, "event"), ["Receive", "Deliver"]);
    assert_eq!(body["value"][1]["action"], "MoveToJmf");

    for (id, recipient) in [
        ("no-such-id", "b@fabrikam.com"),
        (id.as_str(), "z@fabrikam.com"),
    ] {
        let (status, body) = env.details(id, recipient).await;
        assert_eq!((status.as_u16(), code(&body)), (404, "ResourceNotFound"));
    }
    assert_eq!(env.graph.requests(RequestKind::TraceDetails), 5);
}

#[tokio::test]
async fn the_trace_needs_the_application_permission() {
    let env = start_with(&["Mail.Send", "Mail.ReadWrite"], TraceOptions::default()).await;
    env.simple(USER, "a@fabrikam.com").await;
    let id = env.graph.trace_rows()[0].id.clone();
    for (status, body) in [
        env.list(&window(), None).await,
        env.details(&id, "a@fabrikam.com").await,
    ] {
        assert_eq!(
            (status.as_u16(), code(&body)),
            (403, "Authorization_RequestDenied")
        );
        assert_eq!(
            body["error"]["message"],
            "Insufficient privileges to complete the operation."
        );
    }
    // No token at all: 401, as elsewhere.
    let resp = env.http.get(env.traces()).send().await.unwrap();
    let (status, body) = answer(resp).await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (401, "InvalidAuthenticationToken")
    );
}

#[tokio::test]
async fn details_over_the_limit_are_429_with_retry_after() {
    let env = start_with(
        &[TRACE, "Mail.Send"],
        TraceOptions {
            details_limit: 3,
            details_window: Duration::from_secs(60),
            ..Default::default()
        },
    )
    .await;
    env.simple(USER, "a@fabrikam.com").await;
    let id = env.graph.trace_rows()[0].id.clone();
    for _ in 0..3 {
        assert_eq!(env.details(&id, "a@fabrikam.com").await.0, StatusCode::OK);
    }
    let resp = env
        .http
        .get(format!(
            "{}/{id}/getDetailsByRecipient(recipientAddress='a@fabrikam.com')",
            env.traces()
        ))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let (status, body) = answer(resp).await;
    assert_eq!((status.as_u16(), code(&body)), (429, "TooManyRequests"));
    // Lists are not limited.
    assert_eq!(env.list(&window(), None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn faults_on_list_and_details_answer_once() {
    let env = start().await;
    env.simple(USER, "a@fabrikam.com").await;
    let id = env.graph.trace_rows()[0].id.clone();
    env.graph.push_fault(GraphFault::Reply {
        kind: RequestKind::ListTraces,
        status: 429,
        code: "TooManyRequests".into(),
        retry_after: Some(7),
    });
    env.graph.push_fault(GraphFault::Reply {
        kind: RequestKind::TraceDetails,
        status: 503,
        code: "ServiceUnavailable".into(),
        retry_after: None,
    });
    let resp = env
        .http
        .get(env.traces())
        .query(&[("$filter", window())])
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["retry-after"], "7");
    let (status, body) = answer(resp).await;
    assert_eq!((status.as_u16(), code(&body)), (429, "TooManyRequests"));
    let (status, body) = env.details(&id, "a@fabrikam.com").await;
    assert_eq!((status.as_u16(), code(&body)), (503, "ServiceUnavailable"));
    assert_eq!(env.graph.faults_left(), 0);
    let (status, body) = env.list(&window(), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(column(&body, "recipientAddress"), ["a@fabrikam.com"]);
    assert_eq!(env.details(&id, "a@fabrikam.com").await.0, StatusCode::OK);
    assert_eq!(env.graph.requests(RequestKind::ListTraces), 2);
    assert_eq!(env.graph.requests(RequestKind::TraceDetails), 2);
    // A refused list request does not count toward a row's delay.
    assert_eq!(env.graph.trace_rows()[0].lists_seen, 1);
}
