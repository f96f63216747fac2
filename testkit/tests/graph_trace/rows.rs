//! Rows from each route's deliveries and from `record_trace`, the
//! `$filter` forms and the window, paging by `@odata.nextLink`, and rows
//! that appear late (counted in list requests).

use super::*;

#[tokio::test]
async fn every_route_leaves_one_row_per_recipient() {
    let env = start().await;
    env.send_mime(USER, SCAN).await;
    let m = &env.graph.wait_for_delivered(1, WAIT).await[0];
    assert_eq!(
        m.internet_message_id.as_deref(),
        Some("<scan-1@scanner.contoso.com>")
    );
    let (status, body) = env
        .list(&format!("senderAddress eq '{USER}' and {}", window()), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["@odata.context"],
        "https://graph.microsoft.com/v1.0/$metadata#admin/exchange/tracing/messageTraces"
    );
    assert!(body.get("@odata.nextLink").is_none(), "{body}");
    assert_eq!(
        column(&body, "recipientAddress"),
        ["a@fabrikam.com", "b@fabrikam.com", "hidden@fabrikam.com"]
    );
    let rows = body["value"].as_array().unwrap();
    let first = &rows[0];
    assert!(rows.iter().all(|r| r["id"] == first["id"]), "{body}");
    assert_eq!(first["id"].as_str().unwrap().len(), 36);
    assert_eq!(first["messageId"], "<scan-1@scanner.contoso.com>");
    assert_eq!(first["senderAddress"], USER);
    assert_eq!(first["subject"], "Scan 1");
    assert_eq!(first["size"], SCAN.len());
    assert_eq!(first["fromIP"], "127.0.0.1");
    assert_eq!(first["toIP"], Value::Null);
    assert_eq!(first["status"], "delivered");
    let received = first["receivedDateTime"].as_str().unwrap();
    assert!(received.ends_with('Z'), "{received}");
    OffsetDateTime::parse(received, &Rfc3339).unwrap();

    // JSON sendMail: the internetMessageId, brackets added.
    let (status, _) = env
        .post_json(
            &format!("{USER}/sendMail"),
            json!({ "message": {
                "subject": "json",
                "internetMessageId": "json-1@scanner.contoso.com",
                "body": { "contentType": "text", "content": "x" },
                "toRecipients": [{ "emailAddress": { "address": "c@fabrikam.com" } }],
            }}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // A draft, then send: its recipients.
    let (status, draft) = env
        .post_json(
            &format!("{USER}/messages"),
            json!({
                "subject": "draft",
                "toRecipients": [{ "emailAddress": { "address": "d@fabrikam.com" } }],
                "ccRecipients": [{ "emailAddress": { "address": "e@fabrikam.com" } }],
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let mid = draft["id"].as_str().unwrap();
    let (status, _) = env
        .post_json(&format!("{USER}/messages/{mid}/send"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let got = env.graph.wait_for_delivered(3, WAIT).await;
    assert_eq!(
        got[1].internet_message_id.as_deref(),
        Some("json-1@scanner.contoso.com")
    );

    let (_, body) = env.list(&window(), None).await;
    // Newest message first, its recipients in order.
    assert_eq!(
        column(&body, "recipientAddress"),
        [
            "d@fabrikam.com",
            "e@fabrikam.com",
            "c@fabrikam.com",
            "a@fabrikam.com",
            "b@fabrikam.com",
            "hidden@fabrikam.com"
        ]
    );
    assert_eq!(
        body["value"][2]["messageId"],
        "<json-1@scanner.contoso.com>"
    );
    // Graph made up the draft's Message-ID.
    let made_up = body["value"][0]["messageId"].as_str().unwrap();
    assert!(made_up.starts_with('<') && made_up.ends_with(".outlook.com>"));
    // messageId with or without brackets.
    for id in ["json-1@scanner.contoso.com", "<json-1@scanner.contoso.com>"] {
        let (_, body) = env
            .list(&format!("messageId eq '{id}' and {}", window()), None)
            .await;
        assert_eq!(column(&body, "recipientAddress"), ["c@fabrikam.com"]);
    }

    // Mail that went by SMTP: rows from record_trace.
    env.graph.record_trace(
        "smtp-1@scanner.contoso.com",
        "Scanner@Contoso.com",
        &["f@fabrikam.com".to_string()],
        "by smtp",
        1234,
    );
    let (_, body) = env
        .list(
            &format!("recipientAddress eq 'F@fabrikam.com' and {}", window()),
            None,
        )
        .await;
    let row = &body["value"][0];
    assert_eq!(
        (row["messageId"].as_str(), row["senderAddress"].as_str()),
        (Some("<smtp-1@scanner.contoso.com>"), Some(USER))
    );
    assert_eq!(
        (row["subject"].as_str(), row["size"].as_u64()),
        (Some("by smtp"), Some(1234))
    );
    assert_eq!(env.graph.trace_rows().len(), 7);
}

#[tokio::test]
async fn filters_by_sender_status_and_window_and_refuses_the_rest() {
    let env = start().await;
    env.simple(USER, "a@fabrikam.com").await;
    env.simple(BOSS, "b@fabrikam.com").await;
    env.graph
        .set_trace_outcome("B@Fabrikam.com", TraceOutcome::failed("5.7.520"));
    let w = window();
    let recipients = |body: &Value| column(body, "recipientAddress");
    let (_, body) = env
        .list(&format!("senderAddress eq '{BOSS}' and {w}"), None)
        .await;
    assert_eq!(recipients(&body), ["b@fabrikam.com"]);
    assert_eq!(body["value"][0]["status"], "failed");
    let (_, body) = env
        .list(
            &format!("(senderAddress eq '{USER}' OR senderAddress eq '{BOSS}') AND {w}"),
            None,
        )
        .await;
    assert_eq!(recipients(&body), ["b@fabrikam.com", "a@fabrikam.com"]);
    let (_, body) = env
        .list(&format!("status eq 'delivered' and {w}"), None)
        .await;
    assert_eq!(recipients(&body), ["a@fabrikam.com"]);
    // A window that ends before the mail, or begins after it (quoted too).
    let (_, body) = env
        .list(
            &format!(
                "receivedDateTime ge {} and receivedDateTime le {}",
                at(-7200),
                at(-3600)
            ),
            None,
        )
        .await;
    assert_eq!(recipients(&body), Vec::<String>::new());
    let (_, body) = env
        .list(&format!("receivedDateTime ge '{}'", at(60)), None)
        .await;
    assert_eq!(recipients(&body), Vec::<String>::new());

    let refused = [
        (format!("subject eq 'hi' and {w}"), "Invalid filter clause"),
        (
            format!("senderAddress eq '{USER}' or {w}"),
            "Invalid filter clause",
        ),
        (
            format!("(senderAddress eq '{USER}' or recipientAddress eq 'a@fabrikam.com') and {w}"),
            "Invalid filter clause",
        ),
        (
            format!("senderAddress eq '{USER}'"),
            "The time range must be at most 10 days",
        ),
        (
            format!("receivedDateTime ge {}", at(-11 * 24 * 3600)),
            "The time range must be at most 10 days",
        ),
    ];
    for (filter, message) in &refused {
        let (status, body) = env.list(filter, None).await;
        assert_eq!(
            (status.as_u16(), code(&body)),
            (400, "BadRequest"),
            "{filter}"
        );
        assert_eq!(body["error"]["message"], *message, "{filter}");
    }
    // The filters as decoded, refused ones included.
    let asked = env.graph.trace_filters();
    assert_eq!(asked.len(), 5 + refused.len());
    assert_eq!(asked[0], format!("senderAddress eq '{BOSS}' and {w}"));
    assert_eq!(asked.last(), Some(&refused.last().unwrap().0));
}

#[tokio::test]
async fn three_pages_of_two_by_next_link() {
    let env = start_with(
        &[TRACE, "Mail.Send"],
        TraceOptions {
            page_size: 2,
            ..Default::default()
        },
    )
    .await;
    let mime = b"From: scanner@contoso.com\r\nTo: r1@x.com, r2@x.com, r3@x.com, r4@x.com, r5@x.com\r\nSubject: five\r\n\r\nx\r\n";
    env.send_mime(USER, mime).await;
    let (status, body) = env.list(&window(), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut seen = column(&body, "recipientAddress");
    assert_eq!(seen.len(), 2);
    let mut next = body["@odata.nextLink"].as_str().map(str::to_string);
    let mut pages = 1;
    while let Some(url) = next {
        assert!(
            url.starts_with(&format!("{}?$skiptoken=", env.traces())),
            "{url}"
        );
        let (status, body) = env.get(&url).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        seen.extend(column(&body, "recipientAddress"));
        next = body["@odata.nextLink"].as_str().map(str::to_string);
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen,
        ["r1@x.com", "r2@x.com", "r3@x.com", "r4@x.com", "r5@x.com"]
    );
    assert_eq!(env.graph.requests(RequestKind::ListTraces), 3);
    // $top lowers the page, and is capped at page_size.
    let (_, body) = env.list(&window(), Some(1)).await;
    assert_eq!(column(&body, "recipientAddress"), ["r1@x.com"]);
    let (_, body) = env.list(&window(), Some(10)).await;
    assert_eq!(column(&body, "recipientAddress").len(), 2);
    let (status, body) = env.get(&format!("{}?$skiptoken=bogus", env.traces())).await;
    assert_eq!((status.as_u16(), code(&body)), (400, "BadRequest"));
}

#[tokio::test]
async fn rows_appear_after_hidden_lists_then_getting_status() {
    let env = start_with(
        &[TRACE, "Mail.Send"],
        TraceOptions {
            hidden_lists: 2,
            getting_status_lists: 1,
            ..Default::default()
        },
    )
    .await;
    env.graph
        .set_trace_outcome("gone@fabrikam.com", TraceOutcome::failed("5.1.10"));
    env.simple(USER, "gone@fabrikam.com").await;
    assert_eq!(env.graph.trace_rows()[0].status, None);
    let statuses = async || column(&env.list(&window(), None).await.1, "status");
    assert_eq!(statuses().await, Vec::<String>::new());
    assert_eq!(statuses().await, Vec::<String>::new());
    assert_eq!(statuses().await, ["gettingStatus"]);
    // A second message starts its own count.
    env.simple(USER, "ok@fabrikam.com").await;
    assert_eq!(statuses().await, ["failed"]);
    assert_eq!(statuses().await, ["failed"]);
    assert_eq!(statuses().await, ["gettingStatus", "failed"]);
    let rows = env.graph.trace_rows();
    assert_eq!(rows[1].status.as_deref(), Some("delivered"));
    assert_eq!((rows[0].lists_seen, rows[1].lists_seen), (6, 3));
    // status eq matches what is shown now.
    let (_, body) = env
        .list(&format!("status eq 'failed' and {}", window()), None)
        .await;
    assert_eq!(column(&body, "recipientAddress"), ["gone@fabrikam.com"]);
}
