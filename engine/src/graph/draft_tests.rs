//! Tests of the draft route's JSON bodies.

use std::io::Cursor;

use serde_json::json;

use super::*;
use crate::graph::mime_scan::scan;

const MESSAGE: &str = "From: \"HP Scanner\" <scanner@contoso.com>\r\nReply-To: desk@contoso.com\r\nTo: Alice <alice@contoso.com>, gone@contoso.com\r\nSubject: Scan\r\nX-Scanner: MFP 4200\r\nX-Mailer: scanmail\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>Hi</p>\r\n--b\r\nContent-Type: image/png\r\nContent-ID: <logo>\r\nContent-Disposition: inline; filename=logo.png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0K\r\n--b\r\nContent-Type: application/pdf; name=scan.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n--b--\r\n";

fn env(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_message_body_is_exactly_the_envelope() {
    let plan = scan(Cursor::new(MESSAGE.as_bytes())).unwrap();
    let d = draft(
        &plan,
        &[6, 25 * 1024 * 1024],
        &env(&["alice@contoso.com", "hidden@fabrikam.com"]),
    );
    let got = serde_json::to_value(&d.message).unwrap();
    assert_eq!(
        got,
        json!({
            "subject": "Scan",
            "body": { "contentType": "html", "content": "<p>Hi</p>" },
            "from": { "emailAddress": { "address": "scanner@contoso.com", "name": "HP Scanner" } },
            "replyTo": [ { "emailAddress": { "address": "desk@contoso.com" } } ],
            "toRecipients": [ { "emailAddress": { "address": "alice@contoso.com", "name": "Alice" } } ],
            "ccRecipients": [],
            "bccRecipients": [ { "emailAddress": { "address": "hidden@fabrikam.com" } } ],
            "internetMessageHeaders": [
                { "name": "X-Scanner", "value": "MFP 4200" },
                { "name": "X-Mailer", "value": "scanmail" }
            ]
        })
    );
    assert_eq!(d.notes.len(), 2, "{:?}", d.notes);
    assert!(d.notes[0].starts_with("gone@contoso.com is in the To header"));
}

#[test]
fn small_attachments_inline_large_ones_by_upload_session() {
    let plan = scan(Cursor::new(MESSAGE.as_bytes())).unwrap();
    let d = draft(&plan, &[6, INLINE_LIMIT], &env(&["alice@contoso.com"]));
    assert_eq!(d.attachments[0], AttachmentRoute::Inline);
    let AttachmentRoute::Upload(session) = &d.attachments[1] else {
        panic!("{:?}", d.attachments[1]);
    };
    assert_eq!(
        serde_json::to_value(session).unwrap(),
        json!({ "AttachmentItem": {
            "attachmentType": "file", "name": "scan.pdf", "size": INLINE_LIMIT,
            "contentType": "application/pdf", "isInline": false
        }})
    );
    let logo = file_attachment(&plan.attachments[0], b"\x89PNG\r\n");
    assert_eq!(
        serde_json::to_value(&logo).unwrap(),
        json!({
            "@odata.type": "#microsoft.graph.fileAttachment",
            "name": "logo.png", "contentType": "image/png",
            "contentBytes": "iVBORw0K", "isInline": true, "contentId": "logo"
        })
    );
    let d = draft(&plan, &[6, INLINE_LIMIT - 1], &env(&["alice@contoso.com"]));
    assert_eq!(d.attachments[1], AttachmentRoute::Inline);
}

#[test]
fn a_message_without_body_or_subject() {
    let plan = scan(Cursor::new(
        &b"To: a@x.com\r\nContent-Type: application/pdf\r\n\r\n%PDF"[..],
    ))
    .unwrap();
    let d = draft(&plan, &[4], &env(&["a@x.com"]));
    let got = serde_json::to_value(&d.message).unwrap();
    assert_eq!(got["subject"], "");
    assert_eq!(got["body"], json!({ "contentType": "text", "content": "" }));
    assert!(got.get("from").is_none() && got.get("internetMessageHeaders").is_none());
    assert_eq!(got["toRecipients"][0]["emailAddress"]["address"], "a@x.com");
}
